//! Timeouts and cancellation: a call's own deadline (`RpcPromise::with_timeout`), a stub's
//! default (`RpcStub::with_timeout`, `TypedStub::with_timeout`) and the server's limit on a
//! call's duration (`Limits::max_call_duration`), each rejecting with a `TimeoutError` and
//! dropping the method's future on the server. The deadlines are short, real ones; a check
//! that one passed allows for a loaded machine, and a call meant to finish in time is
//! given a deadline far longer than it takes.

use capwire::TypedStub;
use capwire::transport::memory::channel;
use capwire::{Limits, RpcError, RpcPromise, RpcStub, Session, Stub};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts one when dropped.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A service with a method that never finishes (and counts its futures dropped), a quick
/// one, and a method named like the timeout built-ins, which must stay callable.
struct Slow {
    cancelled: Arc<AtomicUsize>,
}

#[capwire::rpc_target]
impl Slow {
    pub async fn never(&self) -> u32 {
        let _count = DropCount(self.cancelled.clone());
        futures::future::pending::<()>().await;
        0
    }

    pub async fn after(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    pub fn quick(&self, n: u32) -> u32 {
        n
    }

    pub fn with_timeout(&self) -> String {
        "the user's with_timeout".to_owned()
    }
}

/// A client and a server session joined in memory; the server serves a `Slow` under
/// `limits` and counts the futures of `never` it dropped.
fn serve(limits: Limits) -> (Session, Session, Arc<AtomicUsize>) {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let (a, b) = channel(Duration::ZERO);
    let slow = Slow {
        cancelled: cancelled.clone(),
    };
    let server = Session::start(b, Some(RpcStub::new(slow)), limits);
    let client = Session::start(a, None, Limits::default());
    (client, server, cancelled)
}

/// Waits (yielding to the sessions' tasks) until `cond` holds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + GUARD;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// A guard against a hang: far longer than any deadline of these tests.
const GUARD: Duration = Duration::from_secs(60);
/// The deadline of calls that never finish.
const SHORT: Duration = Duration::from_millis(200);
/// The deadline of calls that finish: no machine is that slow.
const LONG: Duration = Duration::from_secs(30);

async fn guarded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {GUARD:?}"))
}

/// At least `at_least` has passed since `started`, and not very much more.
fn assert_elapsed(started: tokio::time::Instant, at_least: Duration) {
    let elapsed = started.elapsed();
    assert!(
        elapsed >= at_least && elapsed < at_least + LONG,
        "{elapsed:?} passed, for a deadline of {at_least:?}"
    );
}

#[tokio::test]
async fn a_call_past_its_timeout_rejects_with_a_timeout_error_and_is_cancelled_on_the_server() {
    let (client, server, cancelled) = serve(Limits::default());
    let api = client.main();
    let started = tokio::time::Instant::now();
    let call = RpcPromise::with_timeout(api.call("never", ()), SHORT);
    let (tx, rx) = std::sync::mpsc::channel();
    call.on_broken(move |e| tx.send(e).unwrap());
    let error = guarded("the timed-out call", call).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.name(), "TimeoutError");
    assert!(error.message().contains(&format!("{SHORT:?}")), "{error}");
    assert_elapsed(started, SHORT);
    let broken = rx.try_recv().expect("on_broken ran with the timeout");
    assert!(broken.is_timeout(), "{broken}");
    // Giving up released the call: the server dropped the method's future.
    eventually("the server cancels the call", || {
        cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually("the server released the call", || {
        server.stats().exports == 1
    })
    .await;
    // The session goes on.
    assert_eq!(api.call("quick", (7,)).await.unwrap().as_f64(), Some(7.0));
}

#[tokio::test]
async fn a_call_that_settles_in_time_is_not_touched_by_its_timeout() {
    let (client, _server, _) = serve(Limits::default());
    let call = RpcPromise::with_timeout(client.main().call("after", (5,)), LONG);
    assert_eq!(guarded("the call", call).await.unwrap().as_f64(), Some(5.0));
    // `None` takes a deadline away.
    let stub = client.main().with_timeout(SHORT);
    let twice = 2 * SHORT.as_millis() as u64;
    let call = RpcPromise::with_timeout(stub.call("after", (twice,)), None);
    assert_eq!(
        guarded("the call", call).await.unwrap().as_f64(),
        Some(twice as f64)
    );
}

#[tokio::test]
async fn a_stub_with_a_timeout_times_out_each_call_and_each_call_pipelined_on_them() {
    let (client, server, cancelled) = serve(Limits::default());
    let api = client.main().with_timeout(SHORT);
    let started = tokio::time::Instant::now();
    let error = guarded("the call", api.call("never", ()))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_elapsed(started, SHORT);
    // A pipelined call on a call of the stub has the same default, from when it is made.
    let never = api.call("never", ());
    let pipelined = never.call("quick", (1,));
    drop(never);
    let error = guarded("the pipelined call", pipelined).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_elapsed(started, 2 * SHORT);
    eventually("the server cancels both calls", || {
        cancelled.load(Ordering::SeqCst) == 2
    })
    .await;
    eventually("the server released them", || server.stats().exports == 1).await;
    // Calls in time succeed; the stub it was made from has no default.
    assert_eq!(api.call("quick", (3,)).await.unwrap().as_f64(), Some(3.0));
    let untimed = guarded(
        "the untimed call",
        client.main().call("after", (2 * SHORT.as_millis() as u64,)),
    )
    .await;
    assert_eq!(
        untimed.unwrap().as_f64(),
        Some(2.0 * SHORT.as_millis() as f64)
    );
}

#[tokio::test]
async fn a_typed_stub_with_a_timeout_times_out_its_methods_and_keeps_the_users_names() {
    let (client, _server, cancelled) = serve(Limits::default());
    let slow: Stub<Slow> = TypedStub::from_raw(client.main());
    let timed = TypedStub::with_timeout(&slow, SHORT);
    let error: RpcError = guarded("the typed call", timed.never()).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    eventually("the server cancels the call", || {
        cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(timed.quick(4).await.unwrap(), 4);
    // The built-in is an associated function: the method of that name is the user's.
    assert_eq!(
        timed.with_timeout().await.unwrap(),
        "the user's with_timeout"
    );
    // A typed promise takes a deadline of its own.
    let call = RpcPromise::with_timeout(slow.never(), SHORT);
    assert!(guarded("the call", call).await.unwrap_err().is_timeout());
}

#[tokio::test]
async fn the_servers_max_call_duration_stops_a_call_that_runs_longer() {
    let limits = Limits {
        max_call_duration: Some(SHORT),
        ..Limits::default()
    };
    let (client, server, cancelled) = serve(limits);
    let api = client.main();
    let started = tokio::time::Instant::now();
    let error = guarded("the call", api.call("never", ()))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(
        error.message().contains("limit max_call_duration"),
        "{error}"
    );
    assert_elapsed(started, SHORT);
    eventually("the server drops the method's future", || {
        cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    // Calls within the limit are answered, and the session goes on.
    assert_eq!(
        guarded("a call within", api.call("after", (1,)))
            .await
            .unwrap()
            .as_f64(),
        Some(1.0)
    );
    assert_eq!(api.call("quick", (1,)).await.unwrap().as_f64(), Some(1.0));
    eventually("the server released the calls", || {
        server.stats().exports == 1
    })
    .await;
}

#[test]
fn there_is_no_limit_on_a_calls_duration_by_default() {
    assert_eq!(Limits::default().max_call_duration, None);
}
