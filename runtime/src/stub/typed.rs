//! Typed stubs: [`Stub<T>`] for a `#[rpc_target]` or `#[entrypoint]` type `T`, whose
//! methods are the target's own, and the [`Remote`] mapping from a method's return type to
//! what a caller receives.

use crate::error::RpcError;
use crate::stub::{RpcPromise, RpcStub};
use crate::value::Value;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::IntoFuture;
use std::time::Duration;

/// A type callable over RPC through a typed client. `#[rpc_target]` and `#[entrypoint]`
/// implement it for the annotated type (or `dyn Trait` for an interface); there is no need
/// to implement it by hand.
///
/// The two types it names are generated next to the target, in the user's crate, so that
/// the target's methods can be their inherent methods: whatever a method is called
/// (`get`, `call`, `map`, `clone`, ...), no method of capwire's, of the standard library
/// or of a trait in scope hides it.
pub trait RpcTarget: 'static {
    /// The typed stub, [`Stub<Self>`]: the target's methods, each returning a promise.
    type Client: TypedStub;
    /// A promise of a typed stub, [`StubPromise<Self>`]: the target's methods again,
    /// pipelined on a result not yet known.
    type Promise: TypedPromise<Stub = Self::Client>;
}

/// A typed stub: a reference to a `T` that may live in another process, whose methods are
/// `T`'s public methods, each returning a promise.
///
/// It is the client type `#[rpc_target]` generates for `T` (`TClient`, in `T`'s module),
/// which has no methods but `T`'s: what capwire provides for every stub is reached
/// through [`TypedStub`] as associated functions (`TypedStub::raw(&stub)`,
/// `TypedStub::with_timeout(&stub, d)`, like `Arc::strong_count(&a)`), so that a method
/// of `T` named `raw`, `clone` or anything else is the one called. It is `Clone` (a
/// `dup`, no message), `Debug`, `Serialize` and `Deserialize` (by reference), and
/// converts into [`RpcStub`] and [`Value`].
///
/// ```
/// use capwire::{RpcStub, Stub, TypedStub};
/// # struct Counter;
/// # #[capwire::rpc_target]
/// # impl Counter { pub fn increment(&self, by: Option<i64>) -> i64 { by.unwrap_or(1) } }
/// # async fn demo(raw: RpcStub) -> Result<(), capwire::RpcError> {
/// let counter: Stub<Counter> = TypedStub::from_raw(raw);
/// let n: i64 = counter.increment(Some(2)).await?;
/// # Ok(()) }
/// ```
pub type Stub<T> = <T as RpcTarget>::Client;

/// A promise of a [`Stub<T>`]: what a typed call returns when its method returns a target
/// (by value, or as a `Stub<T>`). Its methods are `T`'s, pipelined: they are sent before
/// the result is known, so a chain of calls costs one round trip. `.await` it for the
/// `Stub<T>` (it is [`IntoFuture`](std::future::IntoFuture), not a `Future`, so that no
/// `FutureExt` method hides one of `T`'s; for `futures::join!` or `select!`, use
/// `IntoFuture::into_future(promise)`, an [`RpcPromise`]).
///
/// What capwire provides for every such promise is reached through [`TypedPromise`], as
/// associated functions: `TypedPromise::with_timeout(promise, d)`,
/// `TypedPromise::on_broken(&promise, f)`, `TypedPromise::raw(&promise)` for the untyped
/// promise.
///
/// ```
/// use capwire::{Stub, StubPromise};
/// # pub struct Session;
/// # #[capwire::rpc_target]
/// # impl Session { pub fn get(&self, key: String) -> Option<String> { Some(key) } }
/// # pub struct Api;
/// # #[capwire::rpc_target]
/// # impl Api { pub fn open(&self) -> Session { Session } }
/// # async fn demo(api: Stub<Api>) -> Result<(), capwire::RpcError> {
/// let session: StubPromise<Session> = api.open(); // not awaited
/// let size = session.get("size").await?; // `Session::get`, pipelined
/// let session: Stub<Session> = session.await?;
/// # Ok(()) }
/// ```
pub type StubPromise<T> = <T as RpcTarget>::Promise;

/// What every typed stub ([`Stub<T>`]) has, as associated functions rather than methods,
/// so that they never hide a method of the target: `TypedStub::raw(&stub)`, not
/// `stub.raw()`. The macros implement it for the client types they generate.
///
/// ```
/// use capwire::{RpcError, Stub, TypedStub};
/// use std::time::Duration;
/// # pub struct Counter;
/// # #[capwire::rpc_target]
/// # impl Counter { pub fn raw(&self) -> String { "mine".into() } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), RpcError> {
/// let counter: Stub<Counter> = TypedStub::local(Counter);
/// assert_eq!(counter.raw().await?, "mine"); // the target's own `raw`
/// let untyped = TypedStub::raw(&counter); // capwire's: the untyped `RpcStub`
/// assert_eq!(untyped.call("raw", ()).typed::<String>().await?, "mine");
/// let patient = TypedStub::with_timeout(&counter, Duration::from_secs(5));
/// TypedStub::on_broken(&patient, |e| eprintln!("lost the counter: {e}"));
/// # Ok(()) }
/// ```
pub trait TypedStub:
    Clone
    + fmt::Debug
    + serde::Serialize
    + DeserializeOwned
    + From<RpcStub>
    + Into<RpcStub>
    + Into<Value>
    + Send
    + Sync
    + 'static
{
    /// The untyped stub, for calls by name.
    fn raw(stub: &Self) -> &RpcStub;

    /// A typed view of an untyped stub. Nothing is checked: calls on a stub of the wrong
    /// type fail when made, as they would in JavaScript.
    fn from_raw(stub: RpcStub) -> Self {
        <Self as From<RpcStub>>::from(stub)
    }

    /// The untyped stub, for calls by name.
    fn into_raw(stub: Self) -> RpcStub {
        <Self as Into<RpcStub>>::into(stub)
    }

    /// A stub to a target in this process (a `#[rpc_target]` type, or a type implementing
    /// an interface, whose stub is the interface's). `target.into()` does the same for a
    /// `#[rpc_target]` type.
    fn local<T>(target: T) -> Self
    where
        T: RpcTarget<Client = Self> + crate::RpcObject,
    {
        Self::from_raw(RpcStub::new(target))
    }

    /// `stub`, each call made through it timing out `timeout` after it is made; see
    /// [`RpcStub::with_timeout`].
    ///
    /// ```
    /// use capwire::{Stub, TypedStub};
    /// use std::time::Duration;
    /// # struct Reports;
    /// # #[capwire::rpc_target]
    /// # impl Reports { pub async fn slow_report(&self) -> String { String::new() } }
    /// # async fn demo(reports: Stub<Reports>) -> Result<(), capwire::RpcError> {
    /// let reports = TypedStub::with_timeout(&reports, Duration::from_secs(5));
    /// match reports.slow_report().await {
    ///     Err(e) if e.is_timeout() => eprintln!("no report within 5 s"),
    ///     other => println!("{}", other?),
    /// }
    /// # Ok(()) }
    /// ```
    fn with_timeout(stub: &Self, timeout: impl Into<Option<Duration>>) -> Self {
        Self::from_raw(Self::raw(stub).with_timeout(timeout))
    }

    /// Runs `callback` once if this stub breaks; see [`RpcStub::on_broken`].
    fn on_broken(stub: &Self, callback: impl FnOnce(RpcError) + Send + 'static) {
        Self::raw(stub).on_broken(callback);
    }
}

/// What every promise of a typed stub ([`StubPromise<T>`]) has, as associated functions
/// rather than methods, so that they never hide a method of the target:
/// `TypedPromise::with_timeout(promise, d)`, not `promise.with_timeout(d)`. The macros
/// implement it for the promise types they generate.
///
/// ```
/// use capwire::{RpcError, Stub, StubPromise, TypedPromise, TypedStub};
/// use std::time::Duration;
/// # pub struct Session;
/// # #[capwire::rpc_target]
/// # impl Session { pub fn pull(&self) -> u32 { 7 } }
/// # pub struct Api;
/// # #[capwire::rpc_target]
/// # impl Api { pub fn open(&self) -> Session { Session } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), RpcError> {
/// # let api: Stub<Api> = TypedStub::local(Api);
/// let session: StubPromise<Session> = api.open();
/// assert_eq!(session.pull().await?, 7); // the target's own `pull`, pipelined
/// TypedPromise::pull(&session); // capwire's: ask for the result now
/// let session = TypedPromise::with_timeout(session, Duration::from_secs(5));
/// let _stub: Stub<Session> = session.await?;
/// # Ok(()) }
/// ```
pub trait TypedPromise:
    IntoFuture<Output = Result<Self::Stub, RpcError>, IntoFuture = RpcPromise<Self::Stub>>
    + private::FromPromise
    + Clone
    + fmt::Debug
    + serde::Serialize
    + Send
    + Sync
    + 'static
{
    /// The stub it resolves to.
    type Stub: TypedStub;

    /// A typed view of an untyped promise (`promise.typed()` makes one of any promise).
    /// Nothing is checked, as for [`TypedStub::from_raw`].
    fn from_raw(promise: RpcPromise<Self::Stub>) -> Self;

    /// The untyped promise, for pipelined calls by name (`.call`, `.get`, `.map`).
    fn raw(promise: &Self) -> &RpcPromise<Self::Stub>;

    /// The untyped promise, which is also what `.await` polls.
    fn into_raw(promise: Self) -> RpcPromise<Self::Stub> {
        IntoFuture::into_future(promise)
    }

    /// A typed stub on the promised object: calls on it are pipelined, as calls on the
    /// promise are, and it can be passed where a `Stub<T>` is expected.
    fn as_stub(promise: &Self) -> Self::Stub {
        TypedStub::from_raw(Self::raw(promise).as_stub())
    }

    /// `promise`, giving up `timeout` from now; see [`RpcPromise::with_timeout`].
    fn with_timeout(promise: Self, timeout: impl Into<Option<Duration>>) -> Self {
        Self::from_raw(RpcPromise::with_timeout(Self::into_raw(promise), timeout))
    }

    /// Runs `callback` once if this promise rejects or its stub breaks; see
    /// [`RpcPromise::on_broken`].
    fn on_broken(promise: &Self, callback: impl FnOnce(RpcError) + Send + 'static) {
        Self::raw(promise).on_broken(callback);
    }

    /// Asks for the result now, without waiting for it; see [`RpcPromise::pull`].
    fn pull(promise: &Self) {
        Self::raw(promise).pull();
    }
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
    /// What a typed call of a method returning `Self` gives back: an [`RpcPromise`] of
    /// the data, or the [`StubPromise`] of a target, whose methods are the target's.
    type Promise: private::FromPromise + IntoFuture<Output = Result<Self::Output, RpcError>>;
}

impl<T: DeserializeOwned + Send + 'static> Remote for T {
    type Output = T;
    type Promise = RpcPromise<T>;
}

/// What a typed call of a method returning `Result<T, E>` gives back, `E` being an error
/// type of yours ([`AppError`](crate::AppError)): awaited, `Ok(Ok(t))` for a value,
/// `Ok(Err(e))` for the method's own error, decoded as `E`, and `Err(RpcError)` when the
/// call itself failed (the session ended, a timeout, a panic on the server, an error
/// that is not an `E`). So `?` on the await passes the call's failure on, and the method's
/// own `Result` is left to match:
///
/// ```
/// # use capwire::{RpcError, Stub};
/// # #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// # pub struct Full { pub capacity: u32 }
/// # impl std::fmt::Display for Full {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "full") }
/// # }
/// # impl std::error::Error for Full {}
/// # pub struct Queue;
/// # #[capwire::rpc_target]
/// # impl Queue { pub fn push(&self, item: String) -> Result<u32, Full> { Err(Full { capacity: 8 }) } }
/// # async fn demo(queue: Stub<Queue>) -> Result<(), RpcError> {
/// match queue.push("job").await? {
///     Ok(position) => println!("queued at {position}"),
///     Err(Full { capacity }) => println!("the queue holds {capacity}: try later"),
/// }
/// # Ok(()) }
/// ```
///
/// Calls can be pipelined on it as on the [`RpcPromise`] it derefs to (untyped).
pub struct TryPromise<T, E> {
    promise: RpcPromise<T>,
    /// The name `E` travels under.
    name: &'static str,
    _error: std::marker::PhantomData<fn() -> E>,
}

impl<T, E> TryPromise<T, E> {
    /// `promise`, giving up `timeout` from now; see [`RpcPromise::with_timeout`].
    pub fn with_timeout(self, timeout: impl Into<Option<Duration>>) -> Self {
        TryPromise {
            promise: self.promise.with_timeout(timeout),
            ..self
        }
    }
}

impl<T, E> std::ops::Deref for TryPromise<T, E> {
    type Target = RpcPromise<T>;

    fn deref(&self) -> &RpcPromise<T> {
        &self.promise
    }
}

impl<T, E> Clone for TryPromise<T, E> {
    fn clone(&self) -> Self {
        TryPromise {
            promise: self.promise.clone(),
            name: self.name,
            _error: std::marker::PhantomData,
        }
    }
}

impl<T, E> fmt::Debug for TryPromise<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TryPromise<{}>({:?})", self.name, self.promise)
    }
}

impl<T: DeserializeOwned, E: crate::AppError> std::future::Future for TryPromise<T, E> {
    type Output = Result<Result<T, E>, RpcError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        std::pin::Pin::new(&mut this.promise)
            .poll(cx)
            .map(|r| match r {
                Ok(t) => Ok(Ok(t)),
                Err(e) => match e.to_app::<E>(this.name) {
                    Some(app) => Ok(Err(app)),
                    None => Err(e),
                },
            })
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

impl<S: From<RpcStub>> FromStub for S {
    fn from_stub(stub: RpcStub) -> Self {
        S::from(stub)
    }
}

/// What generated code needs; not a public API.
#[doc(hidden)]
pub mod private {
    use super::*;
    use std::future::Future;

    pub use crate::__capwire_stub_types as stub_types;
    pub use crate::__capwire_typescript as typescript;
    pub use crate::stub::object::arg;
    pub use serde;

    /// Makes a typed call's result from the untyped promise of the call: an
    /// [`RpcPromise<T>`] of data, or a [`StubPromise`] of a target.
    pub trait FromPromise {
        /// The conversion.
        fn from_promise(promise: RpcPromise) -> Self;
    }

    impl<T> FromPromise for RpcPromise<T> {
        fn from_promise(promise: RpcPromise) -> Self {
            promise.typed()
        }
    }

    /// What a generated method calls through: the stub of a [`Stub<T>`], or the promise
    /// of a [`StubPromise<T>`] (pipelined).
    pub trait Caller {
        fn call_by_name<A: serde::Serialize>(&self, method: &str, args: A) -> RpcPromise;
        fn get_by_name(&self, name: &str) -> RpcPromise;
    }

    impl Caller for RpcStub {
        fn call_by_name<A: serde::Serialize>(&self, method: &str, args: A) -> RpcPromise {
            self.call(method, args)
        }
        fn get_by_name(&self, name: &str) -> RpcPromise {
            self.get(name)
        }
    }

    impl<T> Caller for RpcPromise<T> {
        fn call_by_name<A: serde::Serialize>(&self, method: &str, args: A) -> RpcPromise {
            self.call(method, args)
        }
        fn get_by_name(&self, name: &str) -> RpcPromise {
            self.get(name)
        }
    }

    /// Checks that a method's result written `Stub<T>` is capwire's: the typed client
    /// returns a [`StubPromise<T>`] for it.
    pub const fn stub_of<S, T: ?Sized + RpcTarget<Client = S>>() {}

    /// `Debug` of a generated stub or promise type.
    pub fn debug_typed(
        f: &mut fmt::Formatter<'_>,
        kind: &str,
        target: &str,
        inner: &dyn fmt::Debug,
    ) -> fmt::Result {
        write!(f, "{kind}<{target}>({inner:?})")
    }

    pub use crate::stub::object::{Answer, Args};

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

    /// A method's own error (`Result<T, E>` with `E` an [`AppError`](crate::AppError)),
    /// as it travels: named `name`.
    pub fn app_error<E: crate::AppError>(name: &str, e: &E) -> RpcError {
        RpcError::from_app(name, e)
    }

    /// Checks a method's error type, as [`argument`] does.
    pub const fn app_error_type<E: crate::AppError>() {}

    /// The typed result of a call whose method returns `Result<T, E>`.
    pub fn try_call<T, E>(promise: RpcPromise<T>, name: &'static str) -> TryPromise<T, E> {
        TryPromise {
            promise,
            name,
            _error: std::marker::PhantomData,
        }
    }

    /// Answers a call whose result is known now.
    pub fn ready(result: Result<Value, RpcError>) -> Answer {
        Answer::Now(result)
    }

    /// Answers a call whose result comes later.
    pub fn later<F>(fut: F) -> Answer
    where
        F: Future<Output = Result<Value, RpcError>> + Send + 'static,
    {
        Answer::Later(Box::pin(fut))
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
    pub fn method<T: crate::RpcObject>(target: std::sync::Arc<T>, name: &'static str) -> Answer {
        ready(Ok(Value::Stub(crate::stub::function::bound_method(
            target, name,
        ))))
    }

    pub fn not_a_function(method: &str) -> Answer {
        ready(Err(RpcError::not_a_function(method)))
    }

    /// The answer to `connect` on an entrypoint.
    pub fn connect_unsupported() -> Answer {
        ready(Err(RpcError::type_error(
            "connect() (a TCP socket to the entrypoint) is not supported by capwire",
        )))
    }

    pub fn undefined() -> Answer {
        ready(Ok(Value::Undefined))
    }

    /// Typed calls for generated clients, one per number of arguments (up to serde's 16
    /// for a tuple): each argument has its own type parameter, bounded by [`Argument`], so
    /// that an unmet bound is reported at that argument's type rather than at a tuple.
    macro_rules! calls {
        ($($call:ident($($arg:ident: $ty:ident),*);)*) => {$(
            #[allow(clippy::too_many_arguments)]
            pub fn $call<P: FromPromise, $($ty: Argument),*>(
                on: &impl Caller,
                method: &str,
                $($arg: $ty),*
            ) -> P {
                P::from_promise(on.call_by_name(method, ($($arg,)*)))
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
    pub fn get<P: FromPromise>(on: &impl Caller, name: &str) -> P {
        P::from_promise(on.get_by_name(name))
    }
}

/// The client and promise types of a target, and what they implement: what
/// `#[rpc_target]` generates for every target (its methods aside), kept here so that the
/// expansion is one line. Not a public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __capwire_stub_types {
    (
        target = $target:ty,
        $(#[$client_attr:meta])* client = $client:ident,
        $(#[$promise_attr:meta])* promise = $promise:ident $(,)?
    ) => {
        $(#[$client_attr])*
        #[repr(transparent)]
        pub struct $client($crate::RpcStub);

        impl ::core::clone::Clone for $client {
            fn clone(&self) -> Self {
                $client(::core::clone::Clone::clone(&self.0))
            }
        }

        impl ::core::fmt::Debug for $client {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::__private::debug_typed(f, "Stub", ::core::stringify!($target), &self.0)
            }
        }

        impl ::core::convert::From<$crate::RpcStub> for $client {
            fn from(stub: $crate::RpcStub) -> Self {
                $client(stub)
            }
        }

        impl ::core::convert::From<$client> for $crate::RpcStub {
            fn from(stub: $client) -> Self {
                stub.0
            }
        }

        impl ::core::convert::From<$client> for $crate::Value {
            fn from(stub: $client) -> Self {
                $crate::Value::Stub(stub.0)
            }
        }

        impl $crate::__private::serde::Serialize for $client {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                $crate::__private::serde::Serialize::serialize(&self.0, serializer)
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $client {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                <$crate::RpcStub as $crate::__private::serde::Deserialize<'de>>::deserialize(
                    deserializer,
                )
                .map($client)
            }
        }

        impl $crate::TypedStub for $client {
            fn raw(stub: &Self) -> &$crate::RpcStub {
                &stub.0
            }
        }

        $(#[$promise_attr])*
        pub struct $promise($crate::RpcPromise<$client>);

        impl ::core::clone::Clone for $promise {
            fn clone(&self) -> Self {
                $promise(::core::clone::Clone::clone(&self.0))
            }
        }

        impl ::core::fmt::Debug for $promise {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::__private::debug_typed(
                    f,
                    "StubPromise",
                    ::core::stringify!($target),
                    &self.0,
                )
            }
        }

        impl ::core::future::IntoFuture for $promise {
            type Output = ::core::result::Result<$client, $crate::RpcError>;
            type IntoFuture = $crate::RpcPromise<$client>;

            fn into_future(self) -> $crate::RpcPromise<$client> {
                self.0
            }
        }

        impl $crate::__private::serde::Serialize for $promise {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                $crate::__private::serde::Serialize::serialize(&self.0, serializer)
            }
        }

        impl $crate::__private::FromPromise for $promise {
            fn from_promise(promise: $crate::RpcPromise) -> Self {
                $promise($crate::__private::FromPromise::from_promise(promise))
            }
        }

        impl $crate::TypedPromise for $promise {
            type Stub = $client;

            fn from_raw(promise: $crate::RpcPromise<$client>) -> Self {
                $promise(promise)
            }

            fn raw(promise: &Self) -> &$crate::RpcPromise<$client> {
                &promise.0
            }
        }

        impl $crate::RpcTarget for $target {
            type Client = $client;
            type Promise = $promise;
        }

        $crate::__capwire_typescript! {
            impl $crate::__private::ts::TS for $client {
                type WithoutGenerics = Self;
                type OptionInnerType = Self;
                fn name(cfg: &$crate::__private::ts::Config) -> ::std::string::String {
                    $crate::__private::ts::stub_name::<$target>(cfg)
                }
                fn inline(cfg: &$crate::__private::ts::Config) -> ::std::string::String {
                    <Self as $crate::__private::ts::TS>::name(cfg)
                }
                fn visit_dependencies(v: &mut impl $crate::__private::ts::TypeVisitor)
                where
                    Self: 'static,
                {
                    v.visit::<$target>();
                }
                fn visit_generics(v: &mut impl $crate::__private::ts::TypeVisitor)
                where
                    Self: 'static,
                {
                    v.visit::<$target>();
                }
            }
        }
    };
}
