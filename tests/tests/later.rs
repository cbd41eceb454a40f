//! A promise made from a future (`RpcPromise::from_future`, capnweb 0.12's
//! `new RpcPromise(promise)`): calls pipelined on it before it settles wait, then are
//! delivered in the order they were made; a rejection reaches every one of them. Locally,
//! and over a session to the conformance server's `later`.

mod support;

use capwire::{RpcError, RpcPromise, RpcStub, Value};
use std::sync::atomic::{AtomicI64, Ordering};

struct Counter(AtomicI64);

#[capwire::rpc_target]
impl Counter {
    /// Adds `by`; the new value.
    pub fn increment(&self, by: i64) -> i64 {
        self.0.fetch_add(by, Ordering::SeqCst) + by
    }
}

#[tokio::test]
async fn calls_on_a_promise_made_from_a_future_wait_for_it_then_run_in_order() {
    let (settle, settled) = tokio::sync::oneshot::channel::<()>();
    let promise = RpcPromise::<Value>::from_future(async move {
        settled.await.map_err(|_| RpcError::error("dropped"))?;
        Ok(Value::Stub(RpcStub::new(Counter(AtomicI64::new(1)))))
    });
    let mut first = promise.call("increment", (2,));
    let second = promise.call("increment", (3,));
    // Not delivered before the future settles.
    assert!(
        futures::poll!(&mut first).is_pending(),
        "a call ran before the promise settled"
    );
    settle.send(()).unwrap();
    // The second waits for the first: made later, delivered later.
    let second = second.await.unwrap();
    let first = first.await.unwrap();
    assert_eq!((first.as_i64(), second.as_i64()), (Some(3), Some(6)));
}

#[tokio::test]
async fn a_rejected_future_rejects_every_call_pipelined_on_it() {
    let promise = RpcPromise::<Value>::from_future(async move {
        tokio::task::yield_now().await;
        Err::<Value, _>(RpcError::range("no counter today"))
    });
    let a = promise.call("increment", (1,));
    let b = promise.get("value");
    for result in [a.await, b.await] {
        let e = result.unwrap_err();
        assert_eq!((e.name(), e.message()), ("RangeError", "no counter today"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_promise_made_from_a_future_takes_pipelined_calls_in_order() {
    let addr = support::start_conformance_server().await;
    let api: RpcStub = capwire::connect(&format!("ws://{addr}/")).await.unwrap();
    // `later` answers at once with a promise that settles 50 ms later to a counter.
    let counter = api.call("later", (50, api.call("makeCounter", (1,))));
    let a = counter.call("increment", (2,));
    let b = counter.call("increment", (3,));
    let (a, b) = futures::join!(a, b);
    assert_eq!(
        (a.unwrap().as_i64(), b.unwrap().as_i64()),
        (Some(3), Some(6))
    );
    assert_eq!(
        api.call("later", (10, "v")).await.unwrap().as_str(),
        Some("v")
    );
}
