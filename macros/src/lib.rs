//! Procedural macros for capwire. They are re-exported by the `capwire` crate; depend on
//! that, not on this crate.
//!
//! The `#[entrypoint]` and `#[rpc_target]` attributes arrive with the macros issue; this
//! crate is the place they will live.
