//! # capwire
//!
//! Object-capability RPC for Rust, speaking the [Cap'n Web] protocol: a capwire service
//! can be called by the `capnweb` JavaScript client, and a capwire client can call
//! `capnweb` services.
//!
//! The model, in brief:
//!
//! - A **stub** ([`RpcStub`]) refers to an object that may live in another process. Calls
//!   on it return promises.
//! - A **promise** ([`RpcPromise`]) is a [`Future`] for a call's
//!   result, and can be called on before it resolves: such calls are *pipelined*, sent
//!   at once, so a chain of dependent calls costs one network round trip.
//! - A **target** is an ordinary impl block marked [`macro@rpc_target`] (or
//!   [`macro@entrypoint`] for a service's main object): its `pub` methods become callable,
//!   and [`Stub<T>`] gets the same methods as a typed client. Targets returned from a method
//!   travel by reference: the receiver gets a stub that calls back to them.
//! - A **local object** ([`RpcObject`]) is what the macros implement: it answers calls and
//!   property reads by name. Implement it by hand for dynamic objects.
//! - A **session** ([`Session`]) joins two peers over a transport: WebSocket
//!   ([`connect`], [`serve`]), HTTP batch ([`BatchClient`], [`rpc_route`]) or in memory
//!   ([`transport::memory`]).
//! - Values are ordinary serde types, or the dynamic [`Value`]. Stubs, [`Stub<T>`],
//!   promises and [`Function`]s (closures) may sit anywhere inside them and travel by
//!   reference; [`RpcPromise::map`] runs a mapper where a value lives.
//! - **Streams** ([`ReadableStream`], [`WritableStream`]) are moved to the receiver and
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

pub use capwire_macros::{entrypoint, rpc_target};
pub use error::{ProtocolError, RpcError};
/// The `http` crate, whose `Request` and `Response` an entrypoint's `fetch` takes and returns.
pub use http;
pub use limits::{Limits, ServerLimits};
pub use session::SessionStats;
pub use session::codec::{deserialize, serialize};
pub use stream::{ReadableStream, WritableStream};
pub use stub::function::{FnOutput, Function, IntoFunction};
pub use stub::object::{Body, CallFuture, FetchFuture, RpcObject, arg};
pub use stub::typed::{FromStub, IntoReturn, Remote, RpcTarget, Stub};
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
        Function, RpcError, RpcObject, RpcPromise, RpcStub, Stub, Value, entrypoint, rpc_target,
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
