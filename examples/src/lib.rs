//! Examples for capwire, and the conformance service every interop test uses.

pub mod accounts;
pub mod browser;
pub mod conformance;
pub mod rate_limiter;
pub mod todo;
pub mod typescript;
pub mod workers;
