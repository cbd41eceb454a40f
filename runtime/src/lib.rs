//! # capwire
//!
//! Object-capability RPC for Rust, speaking the [Cap'n Web] protocol: a capwire service
//! can be called by the `capnweb` JavaScript client, and a capwire client can call
//! `capnweb` services.
//!
//! Write an ordinary impl block and mark it [`#[rpc_target]`](macro@rpc_target), or
//! [`#[entrypoint]`](macro@entrypoint) for the main object a server hands each session:
//! its `pub` methods become callable over RPC, and [`Stub<T>`] gets the same methods as a
//! typed client, each returning a promise.
//!
//! ```
//! use capwire::prelude::*;
//! use std::sync::atomic::{AtomicI64, Ordering};
//!
//! pub struct Counter(AtomicI64);
//!
//! #[rpc_target]
//! impl Counter {
//!     /// Adds `by` (1 when left out) and returns the new value.
//!     pub fn increment(&self, by: Option<i64>) -> i64 {
//!         self.0.fetch_add(by.unwrap_or(1), Ordering::SeqCst) + by.unwrap_or(1)
//!     }
//!
//!     /// A property read on the wire.
//!     #[rpc(getter)]
//!     pub fn value(&self) -> i64 {
//!         self.0.load(Ordering::SeqCst)
//!     }
//! }
//!
//! pub struct Api;
//!
//! #[entrypoint]
//! impl Api {
//!     pub fn square(&self, i: f64) -> f64 {
//!         i * i
//!     }
//!
//!     /// Returned by reference: the caller gets a `Stub<Counter>`.
//!     pub async fn make_counter(&self, start: i64) -> Counter {
//!         Counter(AtomicI64::new(start))
//!     }
//!
//!     pub fn fail(&self) -> Result<(), RpcError> {
//!         Err(RpcError::range("out of range"))
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Server: `capwire::serve("127.0.0.1:8787", || Api).await?`, or with the port known first:
//! let server = capwire::Server::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/", server.local_addr()?);
//! tokio::spawn(server.serve(|| Api));
//!
//! // Client (capnweb in JavaScript calls the same service as `api.makeCounter(2)`).
//! let api: Stub<Api> = capwire::connect(&url).await?;
//! assert_eq!(api.square(3.0).await?, 9.0);
//! let counter = api.make_counter(2); // StubPromise<Counter>, not awaited
//! assert_eq!(counter.increment(Some(3)).await?, 5); // pipelined: one round trip
//! let counter: Stub<Counter> = counter.await?;
//! assert_eq!(counter.value().await?, 5);
//! assert_eq!(api.fail().await.unwrap_err().name(), "RangeError");
//! # Ok(()) }
//! ```
//!
//! The pages of [`macro@rpc_target`] and [`macro@entrypoint`] are the guide to the macros,
//! with examples: targets and entrypoints, getters, wire names, targets returned by
//! reference, errors, interfaces (traits) and returning a target from an interface method,
//! streams and callbacks, and the crate path.
//!
//! To depend on capwire, with what the examples use (the README's "Install" section says
//! more):
//!
//! ```toml
//! [dependencies]
//! capwire = { git = "https://github.com/capwire/capwire" }
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! futures = "0.3" # for the stream examples
//! ```
//!
//! # The model
//!
//! - A **stub** ([`RpcStub`]) refers to an object that may live in another process. Calls
//!   on it return promises. [`Stub<T>`] is a typed stub, whose methods are `T`'s and
//!   nothing else: what every stub has is in [`TypedStub`], as associated functions
//!   (`TypedStub::raw(&stub)`), so no name of yours is ever hidden.
//! - A **promise** ([`RpcPromise`]) is a [`Future`] for a call's
//!   result, and can be called on before it resolves: such calls are *pipelined*, sent
//!   at once, so a chain of dependent calls costs one network round trip. A typed call of
//!   a method returning a target gives a [`StubPromise<T>`], whose methods are `T`'s,
//!   pipelined.
//! - A **target** is an ordinary impl block marked [`macro@rpc_target`] (or
//!   [`macro@entrypoint`] for a service's main object): its `pub` methods become callable,
//!   and [`Stub<T>`] gets the same methods as a typed client. Targets returned from a method
//!   travel by reference: the receiver gets a stub that calls back to them. A trait marked
//!   [`macro@rpc_target`] is an *interface*: `Stub<dyn Trait>` calls a service whose code
//!   lives elsewhere.
//! - A **local object** ([`RpcObject`]) is what the macros implement: it answers calls and
//!   property reads by name. Implement it by hand for dynamic objects (below).
//! - A **session** ([`Session`]) joins two peers over a transport: WebSocket
//!   ([`connect`], [`serve`]), HTTP batch ([`BatchClient`], [`rpc_route`]) or in memory
//!   ([`transport::memory`]).
//! - Values are ordinary serde types, or the dynamic [`Value`]. Stubs, [`Stub<T>`],
//!   promises and [`Function`]s (closures) may sit anywhere inside them and travel by
//!   reference; [`RpcPromise::map`] runs a mapper where a value lives.
//! - **Errors** are [`RpcError`]s: a JavaScript error name, a message and properties. A
//!   method returning `Result<T, E>` (with `E: Into<RpcError>`) rejects its call on `Err`.
//! - **Streams** ([`ReadableStream`], [`WritableStream`]) of bytes, or of any serde type
//!   (`ReadableStream<T>`, stubs inside chunks included), are moved to the receiver and
//!   flow with flow control; [`Request`], [`Response`] (with streaming bodies, converting
//!   to the `http` crate's types), [`Blob`], [`Headers`] and [`Url`] travel as the web
//!   platform's values do. See [`stream`] and the README.
//!
//! **Ownership** carries the protocol's reference counts: cloning a stub is `dup`, and
//! dropping its last clone sends `release`. A callee keeps a stub passed to it beyond the
//! call by keeping the value (storing it in a field); whatever it drops is released. A
//! target's dispose hook is its `Drop`: it runs exactly once, when the last reference to it
//! anywhere (in this process or at any peer) is gone, and a session that ends releases
//! everything it exported. [`RpcStub::on_broken`] tells when a stub's session breaks.
//!
//! # Without the macros: `RpcObject`
//!
//! An object written by hand answers calls by name, and any stub is called by name with
//! [`RpcStub::call`]; here over an in-memory session:
//!
//! ```
//! use capwire::{CallFuture, RpcError, RpcObject, RpcStub, Session, Value};
//! use std::sync::Arc;
//!
//! struct Calculator;
//!
//! impl RpcObject for Calculator {
//!     fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
//!         let result = match method {
//!             "square" => capwire::arg::<f64>(&args, 0, method, "i").map(|i| Value::from(i * i)),
//!             other => Err(RpcError::not_a_function(other)),
//!         };
//!         Box::pin(std::future::ready(result))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), RpcError> {
//! let (a, b) = capwire::transport::memory::channel(std::time::Duration::ZERO);
//! let _server = Session::start(b, Some(RpcStub::new(Calculator)), Default::default());
//! let client = Session::start(a, None, Default::default());
//! let nine: f64 = client.main().call("square", (3,)).typed().await?;
//! assert_eq!(nine, 9.0);
//! # Ok(()) }
//! ```
//!
//! [Cap'n Web]: https://github.com/cloudflare/capnweb

#![warn(missing_docs)]

// The layers, lowest first: each may use the ones above it in this list, never the ones
// below (`value` and `stub` are one layer: a value can hold a stub, a stub's call takes
// values).
pub mod durable;
mod error;
pub mod host;
mod limits;
mod session;
pub mod stream;
mod stub;
pub mod transport;
#[cfg(feature = "typescript")]
pub mod typescript;
mod value;
pub mod wire;

#[doc = include_str!("docs/entrypoint.md")]
pub use capwire_macros::entrypoint;
#[doc = include_str!("docs/rpc_target.md")]
pub use capwire_macros::rpc_target;
pub use error::{AppError, ErrorKind, ProtocolError, RpcError};
/// The `http` crate, whose `Request` and `Response` an entrypoint's `fetch` takes and returns.
pub use http;
pub use limits::{Limits, ServerLimits};
pub use session::SessionStats;
pub use session::codec::{deserialize, serialize};
pub use stream::{ReadableStream, WritableStream};
pub use stub::function::{FnOutput, Function, IntoFunction};
pub use stub::object::{Body, CallFuture, FetchFuture, RpcObject, arg};
pub use stub::typed::{
    FromStub, IntoReturn, Remote, RpcTarget, Stub, StubPromise, TryPromise, TypedPromise, TypedStub,
};
pub use stub::{IntoPath, RpcPromise, RpcStub};
pub use transport::batch::BatchClient;
pub use transport::context::SessionContext;
pub use transport::cors::CorsPolicy;
pub use transport::server::{
    IntoStub, NewMain, RpcRoute, Server, rpc_route, rpc_route_with, serve,
};
pub use transport::websocket::{connect, connect_with, connect_with_headers};
pub use transport::{Session, TransportError};
pub use value::de::from_value;
pub use value::ser::to_value;
pub use value::web::{Blob, Headers, Request, Response, Url};
pub use value::{BigInt, Bytes, Date, Object, Value};
pub use wire::PathKey;

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        Function, RpcError, RpcObject, RpcPromise, RpcStub, Stub, StubPromise, TypedPromise,
        TypedStub, Value, entrypoint, rpc_target,
    };
}

#[doc(hidden)]
pub use stub::typed::private as __private;

/// Emits its input when the `typescript` feature is on, nothing otherwise: the macros wrap
/// the TypeScript side of their output in it, so that it follows this crate's feature.
#[cfg(feature = "typescript")]
#[doc(hidden)]
#[macro_export]
macro_rules! __capwire_typescript {
    ($($item:tt)*) => { $($item)* };
}

/// Emits its input when the `typescript` feature is on, nothing otherwise.
#[cfg(not(feature = "typescript"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __capwire_typescript {
    ($($item:tt)*) => {};
}

/// The README's examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
