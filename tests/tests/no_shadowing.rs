//! A target's methods are the ones called, whatever their names: on a typed stub and on an
//! un-awaited promise of one (pipelined), a method named like anything capwire, the
//! standard library or a common trait in scope provides (`get`, `call`, `map`, `clone`,
//! `raw`, `with_timeout`, `into_future`, `FutureExt::map`, ...) is the target's.
//!
//! Each method returns its own name, so a call that reached anything else fails the
//! assertion, or does not compile (a built-in of another arity or result type).

// The traits whose methods a typed stub or promise could otherwise answer with: in scope
// on purpose, to prove that none of them wins.
#[allow(unused_imports)]
use futures::{FutureExt, TryFutureExt};
#[allow(unused_imports)]
use serde::Serialize;
#[allow(unused_imports)]
use std::any::Any;
#[allow(unused_imports)]
use std::borrow::{Borrow, BorrowMut};
#[allow(unused_imports)]
use std::fmt::Debug;

use capwire::{RpcError, Stub, StubPromise, TypedPromise, TypedStub, rpc_target};

/// The target, a stub of it, and the calls: `by_ref` names are called on a stub, on a
/// reference to one and on a promise; `by_value` names (those of methods the prelude's
/// traits take by value: `Into::into`, `TryInto::try_into`, `IntoFuture::into_future`) on
/// an owned stub and promise.
macro_rules! builtins {
    (
        by_ref: [$($name:ident $(= $wire:literal)?),* $(,)?],
        by_value: [$($owned:ident),* $(,)?] $(,)?
    ) => {
        /// Every method is named like a built-in, and answers its own name.
        pub struct Builtins;

        // Confusable names are what this target is for.
        #[allow(
            clippy::should_implement_trait,
            clippy::wrong_self_convention,
            clippy::inherent_to_string_shadow_display
        )]
        #[rpc_target]
        impl Builtins {
            $(
                $(#[rpc(name = $wire)])?
                pub fn $name(&self) -> String {
                    stringify!($name).to_owned()
                }
            )*
            $(
                pub fn $owned(&self) -> String {
                    stringify!($owned).to_owned()
                }
            )*

            /// A `Builtins` by reference: its promise is what the pipelined calls go to.
            pub fn again(&self) -> Builtins {
                Builtins
            }

            /// The same, declared as an interface method would be: `Stub<Builtins>`.
            pub fn again_as_stub(&self) -> Stub<Builtins> {
                TypedStub::local(Builtins)
            }
        }

        /// Calls every method on `stub`, on `&stub`, and on an un-awaited promise of a
        /// `Builtins`, and returns `(name, what answered)` for each call.
        async fn call_all(stub: Stub<Builtins>) -> Vec<(&'static str, String)> {
            let mut answers = Vec::new();
            let by_ref = &stub;
            // `Clone::clone`, not `.clone()`: that is the target's method.
            let promise: StubPromise<Builtins> = stub.again();
            let declared: StubPromise<Builtins> = stub.again_as_stub();
            $(
                answers.push((stringify!($name), stub.$name().await.unwrap()));
                answers.push((stringify!($name), by_ref.$name().await.unwrap()));
                answers.push((stringify!($name), promise.$name().await.unwrap()));
                answers.push((stringify!($name), declared.$name().await.unwrap()));
            )*
            $(
                answers.push((stringify!($owned), Clone::clone(&stub).$owned().await.unwrap()));
                answers.push((stringify!($owned), Clone::clone(&promise).$owned().await.unwrap()));
                answers.push((stringify!($owned), Clone::clone(&declared).$owned().await.unwrap()));
            )*
            // Neither promise was awaited: every call on them was pipelined.
            let _: (StubPromise<Builtins>, StubPromise<Builtins>) = (promise, declared);
            answers
        }

        const COUNT: usize = [$(stringify!($name)),*].len() * 4 + [$(stringify!($owned)),*].len() * 3;
    };
}

builtins! {
    by_ref: [
        // capwire's own: `TypedStub`, `TypedPromise`, `RpcStub`, `RpcPromise`.
        get, call, map = "mapValues", pull, typed, untyped, raw, into_raw, from_raw, local,
        with_timeout, on_broken, as_stub, function, same_target,
        // `Future`, `FutureExt`, `TryFutureExt`.
        poll, then = "thenValue", boxed, boxed_local, fuse, shared, inspect, flatten,
        left_future, right_future, into_stream, catch_unwind, remote_handle, unit_error,
        never_error, now_or_never, poll_unpin, map_ok, map_err, and_then, or_else, err_into,
        ok_into, try_flatten, unwrap_or_else, inspect_ok, inspect_err, try_poll_unpin,
        // `Clone`, `Debug`, `ToOwned`, `Borrow`, `Any`, `Serialize`, `From`, `Drop`, ...
        clone, clone_from, fmt, to_owned, clone_into, borrow, borrow_mut, type_id,
        serialize, from, drop, into_iter, to_string = "show",
    ],
    by_value: [into, try_into, into_future],
}

#[tokio::test]
async fn every_built_in_name_calls_the_targets_method_on_stubs_and_promises() {
    // Over a session, so that the promise's calls are pipelined on the wire.
    let (a, b) = capwire::transport::memory::channel(std::time::Duration::ZERO);
    let _server = capwire::Session::start(
        b,
        Some(TypedStub::into_raw(TypedStub::local(Builtins))),
        Default::default(),
    );
    let client = capwire::Session::start(a, None, Default::default());
    let stub: Stub<Builtins> = TypedStub::from_raw(client.main());
    let answers = call_all(stub).await;
    assert_eq!(answers.len(), COUNT);
    for (name, answer) in answers {
        assert_eq!(
            answer, name,
            "`{name}` reached something other than the method"
        );
    }
}

#[tokio::test]
async fn the_built_ins_stay_reachable_as_associated_functions() {
    let stub: Stub<Builtins> = TypedStub::local(Builtins);
    // The untyped stub answers by wire name.
    let raw: &capwire::RpcStub = TypedStub::raw(&stub);
    assert_eq!(raw.call("get", ()).typed::<String>().await.unwrap(), "get");
    let timed = TypedStub::with_timeout(&stub, std::time::Duration::from_secs(60));
    assert_eq!(timed.with_timeout().await.unwrap(), "with_timeout");
    let promise = TypedPromise::with_timeout(stub.again(), std::time::Duration::from_secs(60));
    TypedPromise::pull(&promise);
    let (tx, rx) = std::sync::mpsc::channel::<RpcError>();
    let broken: Stub<Builtins> =
        TypedStub::from_raw(capwire::RpcStub::broken(RpcError::error("gone")));
    TypedStub::on_broken(&broken, move |e| tx.send(e).unwrap());
    assert_eq!(rx.recv().unwrap().message(), "gone");
    // `.await` goes through `IntoFuture`, whatever `into_future` means on the type.
    let again: Stub<Builtins> = promise.await.unwrap();
    assert_eq!(again.into_future().await.unwrap(), "into_future");
    // For `join!`, the promise's future is `IntoFuture::into_future`.
    let (x, y) = futures::join!(
        std::future::IntoFuture::into_future(again.again()),
        again.get()
    );
    assert_eq!((x.is_ok(), y.unwrap()), (true, "get".to_owned()));
}
