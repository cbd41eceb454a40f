//! Procedural macros for capwire: `#[rpc_target]` and `#[entrypoint]`. They are
//! re-exported by the `capwire` crate; depend on that, not on this crate.
//!
//! The work is split as serde_derive splits it: [`model`] parses the input into a typed
//! model and collects every error (each on its own tokens), [`expand`] generates code from
//! a valid model. Generated code reaches the runtime only through `::capwire::…` (or the
//! path given with `crate = "…"`) and its `#[doc(hidden)] __private` module.

use proc_macro::TokenStream;

mod expand;
mod model;
mod names;

/// Makes the public methods of an impl block callable over RPC, or declares an RPC
/// interface when applied to a trait. See the `capwire` crate's documentation.
#[proc_macro_attribute]
pub fn rpc_target(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::expand(model::Kind::Target, args.into(), input.into()).into()
}

/// Like `#[rpc_target]`, for a service's entry point: also checks the signatures of the
/// names with special meaning on an entrypoint (`fetch`, `connect`). See the `capwire`
/// crate's documentation.
#[proc_macro_attribute]
pub fn entrypoint(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::expand(model::Kind::Entrypoint, args.into(), input.into()).into()
}
