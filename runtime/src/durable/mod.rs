//! Durable Objects.

pub mod storage;

pub use storage::{ListOptions, Storage, Transaction};
