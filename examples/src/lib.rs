//! Examples for capwire, and the conformance service every interop test uses.

pub mod conformance;
pub mod todo;
pub mod workers;
