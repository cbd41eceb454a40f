//! Typed stubs: [`Stub<T>`] for a `#[rpc_target]` or `#[entrypoint]` type `T`, whose
//! methods are the target's own, and the [`Remote`] mapping from a method's return type to
//! what a caller receives.

use crate::error::RpcError;
use crate::stub::{RpcPromise, RpcStub};
use crate::value::Value;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

/// A type callable over RPC through a typed client. `#[rpc_target]` and `#[entrypoint]`
/// implement it for the annotated type (or `dyn Trait` for an interface); there is no need
/// to implement it by hand.
pub trait RpcTarget: 'static {
    /// The generated client: the target's methods, each returning an [`RpcPromise`].
    type Client: From<RpcStub> + AsRef<RpcStub> + Send + Sync + 'static;
}

/// What a caller receives for a value of type `Self` returned by a remote method: the value
/// itself for data (any `DeserializeOwned` type), a [`Stub`] for a `#[rpc_target]` type
/// (which is returned by reference).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the result of an RPC method",
    label = "a caller could not receive this",
    note = "a result must be data that is `serde::Deserialize` (and `Serialize`), or a `#[rpc_target]` type (received as a `Stub`)"
)]
pub trait Remote {
    /// The caller's view of the value.
    type Output: DeserializeOwned + Send + 'static;
}

impl<T: DeserializeOwned + Send + 'static> Remote for T {
    type Output = T;
}

/// A typed stub: a reference to a `T` that may live in another process. Its methods (by
/// deref to the generated client) are `T`'s public methods, each returning a promise.
///
/// ```
/// use capwire::{Stub, RpcStub};
/// # struct Counter;
/// # #[capwire::rpc_target]
/// # impl Counter { pub fn increment(&self, by: Option<i64>) -> i64 { by.unwrap_or(1) } }
/// # async fn demo(raw: RpcStub) -> Result<(), capwire::RpcError> {
/// let counter: Stub<Counter> = Stub::from_raw(raw);
/// let n: i64 = counter.increment(Some(2)).await?;
/// # Ok(()) }
/// ```
pub struct Stub<T: ?Sized + RpcTarget> {
    client: T::Client,
    _target: PhantomData<fn() -> Box<T>>,
}

impl<T: ?Sized + RpcTarget> Stub<T> {
    /// A typed view of an untyped stub. Nothing is checked: calls on a stub of the wrong
    /// type fail when made, as they would in JavaScript.
    pub fn from_raw(stub: RpcStub) -> Self {
        Stub {
            client: T::Client::from(stub),
            _target: PhantomData,
        }
    }

    /// The untyped stub, for calls by name.
    pub fn raw(&self) -> &RpcStub {
        self.client.as_ref()
    }

    /// The untyped stub, for calls by name.
    pub fn into_raw(self) -> RpcStub {
        self.client.as_ref().clone()
    }

    /// `stub`, each call made through it timing out `timeout` after it is made; see
    /// [`RpcStub::with_timeout`]. An associated function, `Stub::with_timeout(&stub, d)`,
    /// so that it never hides a method of `T` of the same name.
    ///
    /// ```
    /// use capwire::Stub;
    /// use std::time::Duration;
    /// # struct Reports;
    /// # #[capwire::rpc_target]
    /// # impl Reports { pub async fn slow_report(&self) -> String { String::new() } }
    /// # async fn demo(reports: Stub<Reports>) -> Result<(), capwire::RpcError> {
    /// let reports = Stub::with_timeout(&reports, Duration::from_secs(5));
    /// match reports.slow_report().await {
    ///     Err(e) if e.is_timeout() => eprintln!("no report within 5 s"),
    ///     other => println!("{}", other?),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(stub: &Self, timeout: impl Into<Option<std::time::Duration>>) -> Self {
        Stub::from_raw(stub.raw().with_timeout(timeout))
    }

    /// Runs `callback` once if this stub breaks; see [`RpcStub::on_broken`].
    pub fn on_broken(&self, callback: impl FnOnce(RpcError) + Send + 'static) {
        self.raw().on_broken(callback);
    }
}

impl<T: ?Sized + RpcTarget> Deref for Stub<T> {
    type Target = T::Client;

    fn deref(&self) -> &T::Client {
        &self.client
    }
}

impl<T: ?Sized + RpcTarget> Clone for Stub<T> {
    fn clone(&self) -> Self {
        Stub::from_raw(self.raw().clone())
    }
}

impl<T: ?Sized + RpcTarget> fmt::Debug for Stub<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Stub<{}>({:?})", std::any::type_name::<T>(), self.raw())
    }
}

impl<T: ?Sized + RpcTarget> From<Stub<T>> for Value {
    fn from(s: Stub<T>) -> Value {
        Value::Stub(s.into_raw())
    }
}

impl<T: ?Sized + RpcTarget> From<Stub<T>> for RpcStub {
    fn from(s: Stub<T>) -> RpcStub {
        s.into_raw()
    }
}

impl<T: ?Sized + RpcTarget> serde::Serialize for Stub<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw().serialize(serializer)
    }
}

impl<'de, T: ?Sized + RpcTarget> serde::Deserialize<'de> for Stub<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RpcStub::deserialize(deserializer).map(Stub::from_raw)
    }
}

impl<T: RpcTarget + crate::RpcObject> Stub<T> {
    /// A stub to a local object, served in this process.
    pub fn local(target: T) -> Self {
        Stub::from_raw(RpcStub::new(target))
    }
}

/// A target moved into a stub, to travel by reference (`Stub::local`).
impl<T: RpcTarget + crate::RpcObject> From<T> for Stub<T> {
    fn from(target: T) -> Self {
        Stub::local(target)
    }
}

/// A promise of a target: calls on it are pipelined, through the same generated client.
impl<T: ?Sized + RpcTarget> Deref for RpcPromise<Stub<T>> {
    type Target = T::Client;

    fn deref(&self) -> &T::Client {
        self.client_cell()
            .get_or_init(|| Box::new(T::Client::from(self.as_stub())))
            .downcast_ref::<T::Client>()
            .expect("the client cell holds this promise's client type")
    }
}

/// How a method's result travels: a `#[rpc_target]` type by reference (the macros
/// implement this for it), anything `Serialize` by value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned over RPC",
    label = "not `Serialize`, and not a `#[rpc_target]` type",
    note = "a result must be data that is `serde::Serialize` (and `Deserialize`), or a `#[rpc_target]` type (passed by reference)"
)]
pub trait IntoReturn {
    /// The value sent to the caller.
    fn into_return(self) -> Result<Value, RpcError>;
}

impl<T: serde::Serialize> IntoReturn for T {
    fn into_return(self) -> Result<Value, RpcError> {
        crate::to_value(&self)
    }
}

/// Converts what [`connect`](crate::connect) returns: an untyped [`RpcStub`] or a typed
/// [`Stub<T>`].
pub trait FromStub: Sized {
    /// The conversion.
    fn from_stub(stub: RpcStub) -> Self;
}

impl FromStub for RpcStub {
    fn from_stub(stub: RpcStub) -> Self {
        stub
    }
}

impl<T: ?Sized + RpcTarget> FromStub for Stub<T> {
    fn from_stub(stub: RpcStub) -> Self {
        Stub::from_raw(stub)
    }
}

/// What generated code needs; not a public API.
#[doc(hidden)]
pub mod private {
    use super::*;
    use crate::stub::object::CallFuture;
    use std::future::Future;

    pub use crate::__capwire_typescript as typescript;
    pub use crate::stub::object::arg;

    pub use crate::stub::object::Args;

    /// [`Args::take`]: argument `index` of `method` as `T`.
    pub fn take_arg<T: serde::de::DeserializeOwned>(
        args: &mut Args,
        index: usize,
        method: &str,
        name: &str,
    ) -> Result<T, RpcError> {
        args.take(index, method, name)
    }
    #[cfg(feature = "typescript")]
    pub use crate::typescript::private as ts;
    pub use futures::future::BoxFuture;

    /// What an argument of an RPC method must be: data, encoded by the caller and decoded
    /// by the callee.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be an argument of an RPC method",
        label = "not data that is `Serialize` and `Deserialize`",
        note = "an argument must be data that is `serde::Serialize` and `serde::Deserialize`; to pass a `#[rpc_target]` type by reference, take a `Stub<T>`"
    )]
    pub trait Argument: serde::Serialize + DeserializeOwned {}

    impl<T: serde::Serialize + DeserializeOwned> Argument for T {}

    /// What a result of an RPC method must be: data, or a target returned by reference.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be the result of an RPC method",
        label = "not data that is `Serialize` and `Deserialize`, and not a `#[rpc_target]` type",
        note = "a result must be data that is `serde::Serialize` and `serde::Deserialize`, or a `#[rpc_target]` type (returned by reference, received as a `Stub`)"
    )]
    pub trait Returned: IntoReturn + Remote {}

    impl<T: IntoReturn + Remote> Returned for T {}

    /// Checks an argument's type. Generated code calls it, spanned at the type, before any
    /// other use of the type in the same body: its error is the one a user reads, and rustc
    /// leaves out the same unmet bound met again at the same place (in that body, or as an
    /// identical error from another).
    pub const fn argument<T: Argument>() {}

    /// Checks a result's type, as [`argument`] does.
    pub const fn returned<T: Returned>() {}

    /// A method's result, sent to the caller.
    pub fn into_return<T: Returned>(value: T) -> Result<Value, RpcError> {
        value.into_return()
    }

    /// A stub to a local target, for `IntoReturn` impls.
    pub fn by_reference<T: crate::RpcObject>(target: T) -> Result<Value, RpcError> {
        Ok(Value::Stub(RpcStub::new(target)))
    }

    pub fn into_error<E: Into<RpcError>>(e: E) -> RpcError {
        e.into()
    }

    /// Answers a call whose result is known now.
    pub fn ready(result: Result<Value, RpcError>) -> CallFuture {
        Box::pin(std::future::ready(result))
    }

    /// Answers a call whose result comes later.
    pub fn later<F>(fut: F) -> CallFuture
    where
        F: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        Box::pin(fut)
    }

    /// What an entrypoint's `fetch` may return: a response, or a `Result` of one.
    pub trait IntoFetchResult {
        fn into_fetch_result(self) -> Result<http::Response<crate::Body>, RpcError>;
    }

    impl IntoFetchResult for http::Response<crate::Body> {
        fn into_fetch_result(self) -> Result<http::Response<crate::Body>, RpcError> {
            Ok(self)
        }
    }

    impl<E: Into<RpcError>> IntoFetchResult for Result<http::Response<crate::Body>, E> {
        fn into_fetch_result(self) -> Result<http::Response<crate::Body>, RpcError> {
            self.map_err(Into::into)
        }
    }

    /// Answers a `fetch` whose response comes later.
    pub fn fetch_later<F>(fut: F) -> crate::FetchFuture
    where
        F: Future<Output = Result<http::Response<crate::Body>, RpcError>> + Send + 'static,
    {
        Box::pin(fut)
    }

    /// Method `name` of `target` read as a property: a function that calls it.
    pub fn method<T: crate::RpcObject>(
        target: std::sync::Arc<T>,
        name: &'static str,
    ) -> CallFuture {
        ready(Ok(Value::Stub(crate::stub::function::bound_method(
            target, name,
        ))))
    }

    pub fn not_a_function(method: &str) -> CallFuture {
        ready(Err(RpcError::not_a_function(method)))
    }

    /// The answer to `connect` on an entrypoint.
    pub fn connect_unsupported() -> CallFuture {
        ready(Err(RpcError::type_error(
            "connect() (a TCP socket to the entrypoint) is not supported by capwire",
        )))
    }

    pub fn undefined() -> CallFuture {
        ready(Ok(Value::Undefined))
    }

    /// Typed calls for generated clients, one per number of arguments (up to serde's 16
    /// for a tuple): each argument has its own type parameter, bounded by [`Argument`], so
    /// that an unmet bound is reported at that argument's type rather than at a tuple.
    macro_rules! calls {
        ($($call:ident($($arg:ident: $ty:ident),*);)*) => {$(
            #[allow(clippy::too_many_arguments)]
            pub fn $call<R, $($ty: Argument),*>(
                stub: &RpcStub,
                method: &str,
                $($arg: $ty),*
            ) -> RpcPromise<R> {
                stub.call(method, ($($arg,)*)).typed()
            }
        )*};
    }

    calls! {
        call0();
        call1(a0: A0);
        call2(a0: A0, a1: A1);
        call3(a0: A0, a1: A1, a2: A2);
        call4(a0: A0, a1: A1, a2: A2, a3: A3);
        call5(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4);
        call6(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5);
        call7(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6);
        call8(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7);
        call9(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8);
        call10(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9);
        call11(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10);
        call12(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10, a11: A11);
        call13(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10, a11: A11, a12: A12);
        call14(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10, a11: A11, a12: A12, a13: A13);
        call15(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10, a11: A11, a12: A12, a13: A13, a14: A14);
        call16(a0: A0, a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10, a11: A11, a12: A12, a13: A13, a14: A14, a15: A15);
    }

    /// A typed property read, for generated clients.
    pub fn get<R>(stub: &RpcStub, name: &str) -> RpcPromise<R> {
        stub.get(name).typed()
    }
}
