//! Functions by reference: a Rust closure travels as a function stub, and calls on the stub
//! run the closure where it lives.

use crate::error::RpcError;
use crate::stub::object::{CallFuture, RpcObject, arg};
use crate::stub::typed::{IntoReturn, Remote};
use crate::stub::{RpcPromise, RpcStub};
use crate::value::Value;
use crate::wire::PathKey;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

/// A function passed by reference: `A` is the tuple of its argument types, `R` its result.
///
/// Make one from a closure with [`Function::new`]; the closure stays in this process and
/// every call on the function, local or from a peer, runs it here. A `Function` received
/// from a peer (as an argument, or inside a result) calls back to wherever the closure
/// lives. Cloning a `Function` is cheap; when the last clone of a remote function is
/// dropped, the peer is told to release it.
///
/// The caller receives `R` as [`Remote`] maps it: data as itself, a `#[rpc_target]` type
/// as a [`Stub`](crate::Stub).
///
/// ```
/// use capwire::Function;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), capwire::RpcError> {
/// let double = Function::new(|n: i64| n * 2);
/// assert_eq!(double.call((21,)).await?, 42);
///
/// // A closure may be async, and may fail by returning `Result<_, RpcError>`.
/// let checked = Function::new(|n: i64| async move {
///     if n < 0 { Err(capwire::RpcError::range("negative")) } else { Ok(n) }
/// });
/// assert_eq!(checked.call((-1,)).await.unwrap_err().name(), "RangeError");
/// # Ok(()) }
/// ```
pub struct Function<A, R = Value> {
    stub: RpcStub,
    _signature: PhantomData<fn(A) -> R>,
}

impl<A, R> Function<A, R> {
    /// A function that runs `f` in this process. `f` takes the arguments by value (each
    /// `Deserialize`; a missing one reads as `undefined`, so `Option` arguments may be
    /// left out) and returns its result directly, as `Result<_, RpcError>`, or as a future
    /// of either.
    pub fn new<F, M>(f: F) -> Self
    where
        F: IntoFunction<A, R, M>,
        M: 'static,
        A: 'static,
        R: 'static,
    {
        Function::from_stub(RpcStub::new(Closure {
            f,
            _signature: PhantomData::<fn(A, M) -> R>,
        }))
    }

    /// A typed view of an untyped stub (a function stub received by path, for instance).
    /// Nothing is checked: calling a stub that is not a function rejects.
    pub fn from_stub(stub: RpcStub) -> Self {
        Function {
            stub,
            _signature: PhantomData,
        }
    }

    /// The same function seen with other argument and result types (a closure's own
    /// types are those `Function::new` inferred). Nothing is checked.
    pub fn cast<B, S>(self) -> Function<B, S> {
        Function::from_stub(self.stub)
    }

    /// The untyped stub.
    pub fn as_stub(&self) -> &RpcStub {
        &self.stub
    }

    /// The untyped stub.
    pub fn into_stub(self) -> RpcStub {
        self.stub
    }
}

impl<A: serde::Serialize, R: Remote> Function<A, R> {
    /// Calls the function with `args` (a tuple: `()`, `(x,)`, `(x, y)`, ...). The call is
    /// sent at once; the promise can be awaited or pipelined on.
    pub fn call(&self, args: A) -> R::Promise {
        crate::stub::typed::private::FromPromise::from_promise(
            self.stub.call(Vec::<PathKey>::new(), args),
        )
    }
}

impl<A, R> RpcPromise<Function<A, R>> {
    /// The promised function, callable before the promise resolves (pipelined).
    ///
    /// ```
    /// # use capwire::{Function, RpcStub};
    /// # async fn demo(api: RpcStub) -> Result<(), capwire::RpcError> {
    /// // `foo()` returns `{ bar: { baz: F } }`: one round trip for the whole chain.
    /// let baz = api.call("foo", ()).get(["bar", "baz"]).typed::<Function<(), String>>();
    /// let qux = baz.function().call(()).await?;
    /// # Ok(()) }
    /// ```
    pub fn function(&self) -> Function<A, R> {
        Function::from_stub(self.as_stub())
    }
}

impl<A, R> Clone for Function<A, R> {
    fn clone(&self) -> Self {
        Function::from_stub(self.stub.clone())
    }
}

impl<A, R> fmt::Debug for Function<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Function({:?})", self.stub)
    }
}

impl<A, R> From<Function<A, R>> for RpcStub {
    fn from(f: Function<A, R>) -> RpcStub {
        f.stub
    }
}

impl<A, R> From<Function<A, R>> for Value {
    fn from(f: Function<A, R>) -> Value {
        Value::Stub(f.stub)
    }
}

impl<A, R> serde::Serialize for Function<A, R> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.stub.serialize(serializer)
    }
}

impl<'de, A, R> serde::Deserialize<'de> for Function<A, R> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RpcStub::deserialize(deserializer).map(Function::from_stub)
    }
}

/// A closure usable as a [`Function`] taking the arguments `A` (a tuple) and returning
/// `R`. Implemented for `Fn` closures of up to eight arguments, sync or async, returning a
/// value or a `Result<_, RpcError>`; `M` tells those apart and is inferred.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be made into an RPC function",
    label = "expected a closure `Fn(args…) -> R` or `Fn(args…) -> impl Future<Output = R>`",
    note = "arguments must be `Deserialize`, the result `Serialize` (or a `#[rpc_target]` type), optionally in `Result<_, RpcError>`; the closure must be `Send + Sync + 'static`"
)]
pub trait IntoFunction<A, R, M>: Send + Sync + 'static {
    /// Runs the closure on arguments received from a caller.
    fn invoke(&self, args: Vec<Value>) -> CallFuture;
}

/// What a function's closure returns, turned into a call's result. `M` tells a plain value
/// from a `Result` and a future from either; it is inferred.
pub trait FnOutput<R, M> {
    /// The call's result, now or later.
    fn into_call(self) -> CallFuture;
}

/// Markers telling [`FnOutput`]'s cases apart; never named by users.
#[doc(hidden)]
pub mod markers {
    /// A value returned as is.
    pub struct Plain;
    /// A `Result`: `Err` rejects the call.
    pub struct Fallible;
    /// A future of `M`.
    pub struct Async<M>(std::marker::PhantomData<M>);
    /// A closure taking `(A…)` whose output is `M`.
    pub struct Args<A, M>(std::marker::PhantomData<(A, M)>);
}
use markers::{Args, Async, Fallible, Plain};

impl<T: IntoReturn> FnOutput<T, Plain> for T {
    fn into_call(self) -> CallFuture {
        Box::pin(std::future::ready(self.into_return()))
    }
}

impl<T: IntoReturn> FnOutput<T, Fallible> for Result<T, RpcError> {
    fn into_call(self) -> CallFuture {
        Box::pin(std::future::ready(self.and_then(IntoReturn::into_return)))
    }
}

impl<Fut, R, M> FnOutput<R, Async<M>> for Fut
where
    Fut: Future + Send + 'static,
    Fut::Output: FnOutput<R, M>,
{
    fn into_call(self) -> CallFuture {
        Box::pin(async move { self.await.into_call().await })
    }
}

macro_rules! into_function {
    ($($arg:ident $idx:tt),*) => {
        impl<F, Out, R, M, $($arg,)*> IntoFunction<($($arg,)*), R, Args<($($arg,)*), M>> for F
        where
            F: Fn($($arg),*) -> Out + Send + Sync + 'static,
            Out: FnOutput<R, M>,
            $($arg: DeserializeOwned,)*
        {
            #[allow(unused_variables, non_snake_case)]
            fn invoke(&self, args: Vec<Value>) -> CallFuture {
                $(
                    let $arg: $arg = match arg(&args, $idx, "function", "argument") {
                        Ok(v) => v,
                        Err(e) => return Box::pin(std::future::ready(Err(e))),
                    };
                )*
                (self)($($arg),*).into_call()
            }
        }
    };
}

into_function!();
into_function!(A0 0);
into_function!(A0 0, A1 1);
into_function!(A0 0, A1 1, A2 2);
into_function!(A0 0, A1 1, A2 2, A3 3);
into_function!(A0 0, A1 1, A2 2, A3 3, A4 4);
into_function!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5);
into_function!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6);
into_function!(A0 0, A1 1, A2 2, A3 3, A4 4, A5 5, A6 6, A7 7);

/// The local object behind a function made by [`Function::new`].
struct Closure<F, S> {
    f: F,
    _signature: PhantomData<S>,
}

impl<F, A, R, M> RpcObject for Closure<F, fn(A, M) -> R>
where
    F: IntoFunction<A, R, M>,
    A: 'static,
    R: 'static,
    M: 'static,
{
    fn call(self: Arc<Self>, method: &str, _args: Vec<Value>) -> CallFuture {
        Box::pin(std::future::ready(Err(RpcError::not_a_function(method))))
    }

    fn call_self(self: Arc<Self>, args: Vec<Value>) -> CallFuture {
        self.f.invoke(args)
    }
}

/// A method of a local object, read as a property: calling it calls the method.
struct BoundMethod {
    target: Arc<dyn RpcObject>,
    name: &'static str,
}

impl RpcObject for BoundMethod {
    fn call(self: Arc<Self>, method: &str, _args: Vec<Value>) -> CallFuture {
        Box::pin(std::future::ready(Err(RpcError::not_a_function(method))))
    }

    fn call_self(self: Arc<Self>, args: Vec<Value>) -> CallFuture {
        self.target.clone().call(self.name, args)
    }
}

/// A function stub calling method `name` of `target`.
pub(crate) fn bound_method<T: RpcObject>(target: Arc<T>, name: &'static str) -> RpcStub {
    RpcStub::new(BoundMethod { target, name })
}
