//! Procedural macros for capwire: `#[rpc_target]` and `#[entrypoint]`. They are
//! re-exported by the `capwire` crate; depend on that, not on this crate.
//!
//! The work is split as serde_derive splits it: `model` parses the input into a typed
//! model and collects every error (each on its own tokens), `expand` generates code from
//! a valid model. Generated code reaches the runtime only through `::capwire::…` (under the
//! name the crate's `Cargo.toml` gives the `capwire` dependency, or the path given with
//! `crate = "…"`) and its `#[doc(hidden)] __private` module. `typescript`
//! generates the TypeScript description of a target (kept only with capwire's
//! `typescript` feature).

use proc_macro::TokenStream;

mod expand;
mod model;
mod names;
mod typescript;

/// Makes the `pub` methods of an impl block callable over RPC, or declares an RPC
/// interface when applied to a trait.
///
/// On `impl Type { ... }`: implements `capwire::RpcObject` for `Type` (a dispatch table
/// from wire names to the `pub` methods; nothing else is reachable), `capwire::RpcTarget`
/// (its typed client, `TypeClient`, reached through `Stub<Type>`), and `capwire::Remote`
/// (a `Type` returned from a method travels by reference).
///
/// On `trait Name { ... }`: generates the typed client for `Stub<dyn Name>`, and the
/// dispatch used by `#[rpc_target] impl Name for Type` to serve an implementation. `async`
/// methods of the trait become methods returning a boxed future, as with async-trait.
///
/// Method attributes: `#[rpc(getter)]` (a property read on the wire), `#[rpc(name = "x")]`
/// (the wire name; lowerCamelCase of the Rust name by default).
///
/// The generated code names the runtime as the crate's `Cargo.toml` names its `capwire`
/// dependency, so `rpc = { package = "capwire", .. }` works as it is. Attribute argument:
/// `crate = "path"` when the runtime is reached another way (re-exported by another crate,
/// say `crate = "my_framework::capwire"`).
///
/// See the `capwire` crate's documentation for examples.
#[proc_macro_attribute]
pub fn rpc_target(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::expand(model::Kind::Target, args.into(), input.into()).into()
}

/// Like `#[rpc_target]`, for a service's entry point (the main object a server hands
/// each session): also checks the names with special meaning on an entrypoint. `fetch`
/// must take an `http::Request` and return an `http::Response`; `connect` is reserved.
///
/// See the `capwire` crate's documentation for examples.
#[proc_macro_attribute]
pub fn entrypoint(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::expand(model::Kind::Entrypoint, args.into(), input.into()).into()
}
