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
/// Where it applies:
///
/// - `impl Type { ... }`, for a named type without generic parameters: implements
///   `capwire::RpcObject` for `Type` (a dispatch table from wire names to the block's `pub`
///   methods; nothing else is reachable), `capwire::RpcTarget` (its typed client,
///   `TypeClient`, reached through `Stub<Type>`), and `capwire::Remote` and
///   `capwire::IntoReturn` (a `Type` returned from a method travels by reference).
/// - `trait Name { ... }`: an interface. Generates the typed client of `Stub<dyn Name>`
///   and the dispatch its implementations use; adds `Send + Sync + 'static` as
///   supertraits. `async fn`s become methods returning a boxed `Send` future, as with
///   async-trait. No generic parameters, associated types or constants.
/// - `impl Name for Type { ... }`, where `Name` is such an interface: serves `Type` through
///   it (every method of the trait is reachable), as `impl Type` does.
///
/// Methods take `&self` (not `&mut self` or `self`), may be `async`, take up to 16 owned
/// serde arguments and return `()`, a serde value, a target (by reference), or
/// `Result<T, E>` with `E: Into<capwire::RpcError>`; no generics, `impl Trait`, references
/// or function pointers. Functions without `self` are not part of the RPC surface.
///
/// Method attributes, one `#[rpc(...)]` per method (on the trait's declaration for an
/// interface, never on its implementation):
///
/// - `#[rpc(getter)]`: a property read on the wire; the method takes no arguments.
/// - `#[rpc(name = "wireName")]`: the wire name; by default the lowerCamelCase of the Rust
///   name (`make_counter` is `makeCounter`). Two methods with one wire name, an empty name,
///   and names JavaScript or capnweb reserve (`then`, `constructor`, `toJSON`, `map`, ...)
///   are compile errors.
///
/// Attribute argument: `#[rpc_target(crate = "path")]`. Without it, the generated code
/// names the runtime as the crate's `Cargo.toml` names its `capwire` dependency, so
/// `rpc = { package = "capwire", .. }` works as it is; `crate = "..."` says where it is
/// when it is reached another way (re-exported by another crate, say
/// `crate = "my_framework::capwire"`).
#[proc_macro_attribute]
pub fn rpc_target(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::expand(model::Kind::Target, args.into(), input.into()).into()
}

/// Like `#[rpc_target]`, for a service's entry point (the main object a server hands
/// each session, or a worker's entrypoint): the same code is generated, and the names with
/// a special meaning on an entrypoint are checked.
///
/// - `fetch` (the wire name) handles HTTP: it must take one `http::Request<_>` and return
///   an `http::Response<_>` (or a `Result` of one). It is not dispatched as an RPC method:
///   `capwire::RpcObject::fetch` calls it, as the worker host does for every HTTP request
///   that is not RPC.
/// - `connect` is reserved (raw socket connections, which RPC does not carry); a call of
///   it is answered with an error.
///
/// It applies to impl blocks only (declare an interface with `#[rpc_target]` on a trait).
/// Method attributes and the `crate = "path"` argument are those of `#[rpc_target]`.
#[proc_macro_attribute]
pub fn entrypoint(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::expand(model::Kind::Entrypoint, args.into(), input.into()).into()
}
