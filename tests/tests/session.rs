//! Session semantics, Rust to Rust over the in-memory transport: ID allocation, promise
//! pipelining, bidirectional calls, release on drop, E-order, disconnects, panics, and
//! capabilities inside ordinary serde values.

mod support;

use capwire::transport::memory::channel;
use capwire::{CallFuture, RpcError, RpcObject, RpcStub, Session, Value, arg};
use capwire_examples::conformance::{Counter, TestTarget};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{eventually, pair, recording};

#[tokio::test]
async fn a_pipelined_chain_is_sent_before_any_answer() {
    // The server end is not started until the client has made the whole chain, so every
    // message the client sent was sent without waiting for an answer: one round trip.
    let (a, b) = channel(Duration::ZERO);
    let (client, log) = recording(a, None);
    let api = client.main();
    let counter = api.call("makeCounter", (2,));
    let five = counter.call("increment", (3,));
    let user = api.call("getUser", (7,));
    let name = user.get("name");
    five.pull();
    name.pull();
    eventually("the client flushed its messages", || {
        log.lock().unwrap().len() == 6
    })
    .await;
    assert_eq!(
        *log.lock().unwrap(),
        [
            r#"["push",["pipeline",0,["makeCounter"],[2]]]"#,
            r#"["push",["pipeline",1,["increment"],[3]]]"#,
            r#"["push",["pipeline",0,["getUser"],[7]]]"#,
            r#"["push",["pipeline",3,["name"]]]"#,
            r#"["pull",2]"#,
            r#"["pull",4]"#,
        ]
    );
    let _server = Session::start(b, Some(RpcStub::new(TestTarget)), Default::default());
    assert_eq!(five.await.unwrap().as_f64(), Some(5.0));
    assert_eq!(name.await.unwrap().as_str(), Some("user7"));
    drop(user);
}

#[tokio::test]
async fn ids_follow_the_protocol_and_results_are_released() {
    let (client, server, client_log, server_log) = pair(RpcStub::new(TestTarget));
    let api = client.main();
    let counter: RpcStub = api.call("makeCounter", (1,)).typed().await.unwrap();
    assert_eq!(
        counter.call("increment", ()).await.unwrap().as_f64(),
        Some(2.0)
    );
    // The server exported the counter under the first negative ID; the client's pushes
    // took positive IDs 1 and 2; each result was released once received.
    let server_sent = server_log.lock().unwrap().clone();
    assert_eq!(
        server_sent[..2],
        [
            r#"["resolve",1,["export",-1]]"#.to_string(),
            r#"["resolve",2,2]"#.to_string()
        ]
    );
    let client_sent = client_log.lock().unwrap().clone();
    assert!(
        client_sent.contains(&r#"["release",1,1]"#.to_string()),
        "{client_sent:?}"
    );
    assert!(
        client_sent.contains(&r#"["push",["pipeline",-1,["increment"],[]]]"#.to_string()),
        "{client_sent:?}"
    );
    eventually("push results are released", || server.stats().exports == 2).await;
    // Dropping the last stub releases the counter on the server.
    drop(counter);
    eventually("the counter is released", || server.stats().exports == 1).await;
    assert!(
        client_log
            .lock()
            .unwrap()
            .contains(&r#"["release",-1,1]"#.to_string())
    );
}

#[tokio::test]
async fn both_sides_call_each_others_main_object() {
    let (a, b) = channel(Duration::ZERO);
    let left = Session::start(a, Some(RpcStub::new(Counter::new(100))), Default::default());
    let right = Session::start(b, Some(RpcStub::new(TestTarget)), Default::default());
    assert_eq!(
        left.main().call("square", (4,)).await.unwrap().as_f64(),
        Some(16.0)
    );
    assert_eq!(
        right.main().call("increment", (5,)).await.unwrap().as_f64(),
        Some(105.0)
    );
    assert_eq!(
        right.main().get("value").await.unwrap().as_f64(),
        Some(105.0)
    );
}

#[tokio::test]
async fn a_server_calls_back_into_a_stub_the_client_passed() {
    let (client, _server, _, _) = pair(RpcStub::new(TestTarget));
    let mine = RpcStub::new(Counter::new(5));
    let result = client
        .main()
        .call("incrementCounter", (mine.clone(), 10))
        .await
        .unwrap();
    assert_eq!(result.as_f64(), Some(15.0));
    assert_eq!(mine.get("value").await.unwrap().as_f64(), Some(15.0));
}

/// Records the order in which calls reach it.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<i64>>,
}

impl RpcObject for Recorder {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        let n = arg::<i64>(&args, 0, method, "n");
        Box::pin(async move {
            let n = n?;
            self.seen.lock().unwrap().push(n);
            // Yield so that a later call could overtake this one if order were not kept.
            tokio::task::yield_now().await;
            Ok(n.into())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reach_the_application_in_the_order_sent() {
    let recorder = Arc::new(Recorder::default());
    let (client, _server, _, _) = pair(RpcStub::from_arc(recorder.clone()));
    let api = client.main();
    let calls: Vec<_> = (0..200).map(|n| api.call("record", (n,))).collect();
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(*recorder.seen.lock().unwrap(), (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_slow_call_does_not_block_others() {
    let (client, _server, _, _) = pair(RpcStub::new(TestTarget));
    let api = client.main();
    let slow = api.call("delay", (60_000, "slow"));
    assert_eq!(api.call("square", (3,)).await.unwrap().as_f64(), Some(9.0));
    drop(slow);
}

#[tokio::test]
async fn when_the_transport_closes_pending_calls_fail_and_tables_empty() {
    let (client, server, _, _) = pair(RpcStub::new(TestTarget));
    let api = client.main();
    let counter: RpcStub = api.call("makeCounter", (1,)).typed().await.unwrap();
    let pending = api.call("delay", (60_000, "never"));
    pending.pull();
    eventually("the server has the call", || server.stats().exports >= 3).await;
    server.close();
    let err = pending.await.unwrap_err();
    assert!(
        err.message().contains("session ended") || err.message().contains("closed"),
        "{err}"
    );
    let err = counter.call("increment", ()).await.unwrap_err();
    assert!(
        err.message().contains("session ended") || err.message().contains("closed"),
        "{err}"
    );
    assert_eq!(
        server.stats(),
        capwire::SessionStats {
            imports: 0,
            exports: 0,
            memory: 0
        }
    );
    eventually("the client noticed", || {
        client.stats().imports == 0 && client.stats().exports == 0
    })
    .await;
}

struct Panicker;

impl RpcObject for Panicker {
    fn call(self: Arc<Self>, method: &str, _args: Vec<Value>) -> CallFuture {
        match method {
            "sync" => panic!("sync bug"),
            "async" => Box::pin(async {
                tokio::task::yield_now().await;
                panic!("async bug")
            }),
            _ => Box::pin(async { Ok("fine".into()) }),
        }
    }
}

#[tokio::test]
async fn a_panic_in_a_served_method_rejects_the_call() {
    let (client, _server, _, _) = pair(RpcStub::new(Panicker));
    let api = client.main();
    let err = api.call("sync", ()).await.unwrap_err();
    assert!(err.message().contains("sync bug"), "{err}");
    let err = api.call("async", ()).await.unwrap_err();
    assert!(err.message().contains("async bug"), "{err}");
    assert_eq!(api.call("ok", ()).await.unwrap().as_str(), Some("fine"));
}

/// A generated target: its calls with plain arguments take the path that answers a method
/// that is not `async` without a future, and polls an `async` one once before boxing it.
struct GeneratedPanicker;

#[capwire::rpc_target]
impl GeneratedPanicker {
    pub fn sync_panic(&self, n: u32) -> u32 {
        if n > 0 {
            panic!("sync bug {n}");
        }
        n
    }

    pub async fn early_panic(&self, n: u32) -> u32 {
        if n > 0 {
            panic!("early bug {n}");
        }
        n
    }

    pub async fn late_panic(&self, n: u32) -> u32 {
        tokio::task::yield_now().await;
        if n > 0 {
            panic!("late bug {n}");
        }
        n
    }
}

#[tokio::test]
async fn a_panic_in_a_generated_method_rejects_the_call_at_any_point() {
    let (client, _server, _, _) = pair(RpcStub::new(GeneratedPanicker));
    let api = client.main();
    for (method, text) in [
        ("syncPanic", "sync bug 3"),
        ("earlyPanic", "early bug 3"),
        ("latePanic", "late bug 3"),
    ] {
        let err = api.call(method, (3,)).await.unwrap_err();
        assert!(err.message().contains(text), "{method}: {err}");
        let fine = api.call(method, (0,)).await.unwrap();
        assert_eq!(fine.as_f64(), Some(0.0), "{method}: the session goes on");
    }
}

#[tokio::test]
async fn unknown_methods_reject_with_type_error_and_the_session_goes_on() {
    let (client, _server, _, _) = pair(RpcStub::new(TestTarget));
    let api = client.main();
    let err = api.call("nope", ()).await.unwrap_err();
    assert_eq!(
        (err.name(), err.message()),
        ("TypeError", "'nope' is not a function.")
    );
    let err = api.call("square", ("not a number",)).await.unwrap_err();
    assert_eq!(err.name(), "TypeError");
    assert!(
        err.message().contains("square") && err.message().contains("argument 0"),
        "{err}"
    );
    let err = api
        .call("throwError", ())
        .call("anything", ())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "test error",
        "a call pipelined on a rejection rejects with its error"
    );
    assert_eq!(api.call("square", (2,)).await.unwrap().as_f64(), Some(4.0));
}

#[tokio::test]
async fn large_integers_travel_as_bigint() {
    let (client, _server, client_log, _) = pair(RpcStub::new(TestTarget));
    let back: u64 = client
        .main()
        .call("echo", (u64::MAX,))
        .typed()
        .await
        .unwrap();
    assert_eq!(back, u64::MAX);
    let back: i64 = client
        .main()
        .call("echo", (i64::MIN,))
        .typed()
        .await
        .unwrap();
    assert_eq!(back, i64::MIN);
    let sent = client_log.lock().unwrap().join("\n");
    assert!(
        sent.contains(r#"["bigint","18446744073709551615"]"#),
        "{sent}"
    );
}

/// Capabilities in every serde position: field, `Vec`, `Option`, map value.
#[derive(serde::Serialize, serde::Deserialize)]
struct Holder {
    counter: RpcStub,
    list: Vec<RpcStub>,
    maybe: Option<RpcStub>,
    none: Option<RpcStub>,
    map: BTreeMap<String, RpcStub>,
}

/// Returns a `Holder` of fresh counters, and adds up a `Holder` it is given.
struct Holders;

impl RpcObject for Holders {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        match method {
            "make" => Box::pin(async {
                let c = |n| RpcStub::new(Counter::new(n));
                capwire::to_value(&Holder {
                    counter: c(1),
                    list: vec![c(10), c(20)],
                    maybe: Some(c(100)),
                    none: None,
                    map: BTreeMap::from([("k".to_string(), c(1000))]),
                })
            }),
            "sum" => {
                let holder = arg::<Holder>(&args, 0, method, "holder");
                Box::pin(async move { Ok(sum(holder?).await?.into()) })
            }
            other => Box::pin(std::future::ready(Err(RpcError::not_a_function(other)))),
        }
    }
}

async fn sum(h: Holder) -> Result<f64, RpcError> {
    let mut stubs = vec![h.counter];
    stubs.extend(h.list);
    stubs.extend(h.maybe);
    assert!(h.none.is_none());
    stubs.extend(h.map.into_values());
    let mut total = 0.0;
    for s in stubs {
        total += s.get("value").await?.as_f64().unwrap_or(f64::NAN);
    }
    Ok(total)
}

#[tokio::test]
async fn capabilities_travel_inside_serde_values_both_ways() {
    let (client, _server, _, _) = pair(RpcStub::new(Holders));
    let api = client.main();
    // Receiving: stubs in a struct field, a Vec, an Option and a map value.
    let holder: Holder = api.call("make", ()).typed().await.unwrap();
    assert_eq!(
        holder.list[1].call("increment", ()).await.unwrap().as_f64(),
        Some(21.0)
    );
    assert_eq!(
        sum(Holder { ..holder }).await.unwrap(),
        1.0 + 10.0 + 21.0 + 100.0 + 1000.0
    );
    // Sending: the server calls back into the client's objects.
    let c = |n| RpcStub::new(Counter::new(n));
    let mine = Holder {
        counter: c(1),
        list: vec![c(2)],
        maybe: Some(c(3)),
        none: None,
        map: BTreeMap::from([("x".to_string(), c(4))]),
    };
    assert_eq!(api.call("sum", (mine,)).await.unwrap().as_f64(), Some(10.0));
}

/// Hands out the same counter every time.
struct SameCounter(RpcStub);

impl RpcObject for SameCounter {
    fn call(self: Arc<Self>, _method: &str, _args: Vec<Value>) -> CallFuture {
        let stub = self.0.clone();
        Box::pin(async move { Ok(stub.into()) })
    }
}

#[tokio::test]
async fn an_object_exported_twice_gets_an_id_per_introduction() {
    // capnweb releases an import with a count of 1 however often it was introduced, so
    // capwire never reuses an export ID: each introduction is released on its own.
    let (client, server, client_log, server_log) =
        pair(RpcStub::new(SameCounter(RpcStub::new(Counter::new(0)))));
    let api = client.main();
    let first: RpcStub = api.call("get", ()).typed().await.unwrap();
    let second: RpcStub = api.call("get", ()).typed().await.unwrap();
    let sent = server_log.lock().unwrap().clone();
    for id in [-1, -2] {
        let export = format!(r#"["export",{id}]"#);
        assert_eq!(
            sent.iter().filter(|m| m.contains(&export)).count(),
            1,
            "{sent:?}"
        );
    }
    assert_eq!(server.stats().exports, 3);
    drop((first, second));
    eventually("the counter is released", || server.stats().exports == 1).await;
    let released = client_log.lock().unwrap().clone();
    for id in [-1, -2] {
        assert!(
            released.contains(&format!(r#"["release",{id},1]"#)),
            "{released:?}"
        );
    }
}

#[tokio::test]
async fn an_id_the_peer_introduces_twice_is_released_with_its_full_count() {
    use futures::{SinkExt, StreamExt};
    let (a, mut peer) = channel(Duration::ZERO);
    let client = Session::start(a, None, Default::default());
    let api = client.main();
    let promises = [api.call("get", ()), api.call("get", ())];
    promises.iter().for_each(capwire::RpcPromise::pull);
    for _ in 0..4 {
        peer.next().await.unwrap().unwrap(); // two pushes, two pulls
    }
    for id in [1, 2] {
        let resolve = format!(r#"["resolve",{id},["export",-1]]"#);
        peer.send(resolve).await.unwrap();
    }
    let first: RpcStub = promises[0].typed().await.unwrap();
    let second: RpcStub = promises[1].typed().await.unwrap();
    drop(promises); // they hold their results
    assert!(first.same_target(&second), "one ID is one import");
    drop((first, second));
    let mut seen = Vec::new();
    while !seen.contains(&r#"["release",-1,2]"#.to_string()) {
        let m = peer.next().await.unwrap().unwrap();
        assert!(!m.starts_with(r#"["release",-1,1]"#), "released short: {m}");
        seen.push(m);
    }
}

#[tokio::test]
async fn a_promise_inside_a_result_resolves_on_the_other_side() {
    let (client, _server, _, server_log) = pair(RpcStub::new(TestTarget));
    let api = client.main();
    let r = api.call("callSquare", (api.clone(), 6)).await.unwrap();
    assert_eq!(r.get("result").and_then(Value::as_f64), Some(36.0));
    let sent = server_log.lock().unwrap().clone();
    let promise = sent
        .iter()
        .position(|m| m.contains(r#"{"result":["promise",-1]}"#));
    let resolve = sent.iter().position(|m| m == r#"["resolve",-1,36]"#);
    assert!(
        promise.is_some() && promise < resolve,
        "the promise must be sent before its resolution: {sent:?}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_call_leaves_nothing_behind() {
    let (client, server, _, _) = pair(RpcStub::new(TestTarget));
    let api = client.main();
    let counter = api.call("makeCounter", (1,));
    let mine = RpcStub::new(Counter::new(1));
    let slow = api.call("delay", (60_000, mine));
    slow.pull();
    counter.pull();
    eventually("the server holds the calls", || server.stats().exports >= 3).await;
    client.close();
    let why = server.closed().await;
    assert!(why.message().contains("closed"), "{why}");
    assert_eq!(
        server.stats(),
        capwire::SessionStats {
            imports: 0,
            exports: 0,
            memory: 0
        }
    );
    assert!(slow.await.is_err());
}

/// Sets its flag when dropped.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A method that never finishes, holding a `DropFlag`.
struct Sleeper(Arc<std::sync::atomic::AtomicBool>);

impl RpcObject for Sleeper {
    fn call(self: Arc<Self>, _method: &str, _args: Vec<Value>) -> CallFuture {
        let flag = DropFlag(self.0.clone());
        Box::pin(async move {
            let _flag = flag;
            futures::future::pending::<()>().await;
            Ok(Value::Undefined)
        })
    }
}

#[tokio::test]
async fn calls_in_flight_are_cancelled_when_their_client_disconnects() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (client, server, _, _) = pair(RpcStub::new(Sleeper(dropped.clone())));
    let pending = client.main().call("sleep", ());
    pending.pull();
    eventually("the server runs the call", || server.stats().exports == 2).await;
    assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
    client.close();
    server.closed().await;
    eventually("the call's task is gone", || {
        dropped.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
}

#[tokio::test]
async fn a_client_session_ends_once_everything_it_imported_is_dropped() {
    let (client, server, _, _) = pair(RpcStub::new(TestTarget));
    let api = client.main();
    let counter: RpcStub = api.call("makeCounter", (1,)).typed().await.unwrap();
    drop(api);
    // The main stub is gone, but the counter keeps the session alive.
    assert_eq!(
        counter.call("increment", ()).await.unwrap().as_f64(),
        Some(2.0)
    );
    drop(counter);
    let why = server.closed().await;
    assert!(why.message().contains("closed"), "{why}");
    assert!(
        client
            .closed()
            .await
            .message()
            .contains("disposing the main stub")
    );
}

/// Hands out a `Recorder`, but only after yielding a while, so that calls pipelined on the
/// result arrive before it exists.
struct SlowFactory(Arc<Recorder>);

#[capwire::rpc_target]
impl SlowFactory {
    pub async fn recorder(&self) -> capwire::Stub<dyn RecorderApi> {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        capwire::TypedStub::from_raw(RpcStub::from_arc(self.0.clone()))
    }
}

/// The `record(n)` interface of `Recorder`.
#[capwire::rpc_target]
pub trait RecorderApi {
    /// Records `n`.
    async fn record(&self, n: i64) -> i64;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_pipelined_on_a_pending_result_are_delivered_in_order() {
    let recorder = Arc::new(Recorder::default());
    let (client, _server, _, _) = pair(RpcStub::new(SlowFactory(recorder.clone())));
    let factory: capwire::Stub<SlowFactory> = capwire::TypedStub::from_raw(client.main());
    let promised = factory.recorder();
    // One call is given up before the result exists: it must not hold up the others.
    let abandoned = promised.record(-1);
    let calls: Vec<_> = (0..100).map(|n| promised.record(n)).collect();
    drop(abandoned);
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let seen: Vec<i64> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|n| *n >= 0)
        .collect();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropping_an_unresolved_promise_releases_its_result_on_the_peer() {
    let (client, server, client_log, _) = pair(RpcStub::new(TestTarget));
    let api = client.main(); // keeps the client session open
    let pending = api.call("delay", (60_000, "never"));
    pending.pull();
    eventually("the server holds the call", || server.stats().exports == 2).await;
    drop(pending);
    eventually("the server let go of it", || server.stats().exports == 1).await;
    assert!(
        client_log
            .lock()
            .unwrap()
            .contains(&r#"["release",1,1]"#.to_string())
    );
    assert_eq!(client.stats().imports, 1, "only the main stub is left");
    drop(api);
}

#[tokio::test]
async fn limits_set_on_a_session_are_enforced_with_an_abort_naming_them() {
    let (a, b) = channel(Duration::ZERO);
    let limits = capwire::Limits {
        max_message_size: 1024,
        max_depth: 8,
        max_bigint_digits: 10,
        ..Default::default()
    };
    let server = Session::start(b, Some(RpcStub::new(TestTarget)), limits);
    let client = Session::start(a, None, Default::default());
    let api = client.main();
    // Under the limits, all is well.
    assert_eq!(
        api.call("echo", ("x".repeat(100),))
            .await
            .unwrap()
            .as_str()
            .map(str::len),
        Some(100)
    );
    // Over one, the server ends the session and says which limit.
    let err = api.call("echo", ("x".repeat(2000),)).await.unwrap_err();
    assert!(err.message().contains("max_message_size"), "{err}");
    assert!(server.closed().await.message().contains("max_message_size"));
}
