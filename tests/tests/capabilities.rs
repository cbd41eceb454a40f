//! Capabilities by reference, Rust to Rust over the in-memory transport: functions both
//! ways, targets and promises inside values, stubs coming home, forwarding through a third
//! session, disposal, `on_broken`, and errors through pipelines.

mod support;

use capwire::transport::memory::channel;
use capwire::{Function, RpcError, RpcStub, Session, Stub, Value, entrypoint, rpc_target};
use capwire::{StubPromise, TypedPromise, TypedStub};
use capwire_examples::conformance::{Counter, Foo, TestTarget};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Log, eventually, pair, recording};

/// Counts its own drops: its dispose hook is `Drop`.
pub struct Tracked {
    n: i64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[rpc_target]
impl Tracked {
    /// The number it was made with.
    pub fn get(&self) -> i64 {
        self.n
    }
}

/// Makes tracked objects and keeps stubs it is given beyond the call.
pub struct Hub {
    kept: Mutex<Vec<RpcStub>>,
    drops: Arc<AtomicUsize>,
}

impl Hub {
    fn new(drops: Arc<AtomicUsize>) -> Hub {
        Hub {
            kept: Mutex::default(),
            drops,
        }
    }
}

#[entrypoint]
impl Hub {
    /// A new tracked object, by reference.
    pub fn make(&self, n: i64) -> Tracked {
        Tracked {
            n,
            drops: self.drops.clone(),
        }
    }

    /// Keeps `stub` after the call returns; answers how many are kept.
    pub fn keep(&self, stub: RpcStub) -> usize {
        let mut kept = self.kept.lock().unwrap();
        kept.push(stub);
        kept.len()
    }

    /// Calls `method` on kept stub `index`.
    pub async fn call_kept(&self, index: usize, method: String) -> Result<Value, RpcError> {
        let stub = self.kept.lock().unwrap().get(index).cloned();
        let stub = stub.ok_or_else(|| RpcError::range("no such stub"))?;
        stub.call(method, ()).await
    }

    /// Lets go of every kept stub.
    pub fn forget(&self) {
        self.kept.lock().unwrap().clear();
    }

    /// Calls `f(x)` and adds one.
    pub async fn call_back(&self, f: Function<(i64,), i64>, x: i64) -> Result<i64, RpcError> {
        Ok(f.call((x,)).await? + 1)
    }

    /// `v`, unchanged.
    pub fn echo(&self, v: Value) -> Value {
        v
    }
}

fn conformance() -> (Session, Session, Log, Log) {
    pair(RpcStub::new(TestTarget))
}

#[tokio::test]
async fn a_returned_closure_keeps_its_state_where_it_lives() {
    let (client, _server, _, _) = conformance();
    let api: Stub<TestTarget> = TypedStub::from_raw(client.main());
    let f = api.new_counter_fn().await.unwrap();
    let mut totals = Vec::new();
    for n in [2.0, 1.0, -5.0] {
        totals.push(f.call((Some(n),)).await.unwrap());
    }
    assert_eq!(totals, [2.0, 3.0, -2.0]);
    assert_eq!(f.call((None,)).await.unwrap(), -2.0, "no argument adds 0");
}

#[tokio::test]
async fn a_server_calls_a_client_closure_in_the_middle_of_a_call() {
    let (client, _server, client_log, server_log) = conformance();
    let api: Stub<TestTarget> = TypedStub::from_raw(client.main());
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let times_ten = Function::new(move |x: f64| {
        counted.fetch_add(1, Ordering::SeqCst);
        Value::from(x * 10.0)
    });
    let r = api.call_function(times_ten, 3.0).await.unwrap();
    assert_eq!(r.result.as_f64(), Some(30.0));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the closure ran here, once");
    // The callback crossed the wire: the server pushed a call on the client's export.
    assert!(
        server_log
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.starts_with(r#"["push",["pipeline",-1,[],[3]]"#)),
        "{:?}",
        server_log.lock().unwrap()
    );
    assert!(
        client_log
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains(r#"["export",-1]"#))
    );

    // An async closure that fails rejects the server's call with its error.
    let failing = Function::new(|x: f64| async move {
        tokio::task::yield_now().await;
        Err::<Value, _>(RpcError::range(format!("refused {x}")))
    });
    let e = api.call_function(failing, 4.0).await.unwrap_err();
    assert_eq!((e.name(), e.message()), ("RangeError", "refused 4"));
}

#[tokio::test]
async fn closures_go_both_ways_with_typed_arguments() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (client, _server, _, _) = pair(RpcStub::new(Hub::new(drops)));
    let hub: Stub<Hub> = TypedStub::from_raw(client.main());
    let square = Function::new(|x: i64| x * x);
    assert_eq!(hub.call_back(square.clone(), 7).await.unwrap(), 50);
    // A closure received back from the peer still runs here.
    let echoed: Function<(i64,), i64> = hub.echo(square.clone().into()).typed().await.unwrap();
    assert_eq!(echoed.call((5,)).await.unwrap(), 25);
    assert!(echoed.as_stub().same_target(square.as_stub()));
}

#[tokio::test]
async fn a_function_inside_plain_data_is_called_by_path_in_one_round_trip() {
    // The server starts only after the client has sent the whole chain.
    let (a, b) = channel(Duration::ZERO);
    let (client, log) = recording(a, None);
    let api: Stub<TestTarget> = TypedStub::from_raw(client.main());
    // By path, untyped:
    let qux = TypedStub::raw(&api)
        .call("foo", ())
        .call(["bar", "baz"], ());
    // By path, typed:
    let function_baz = api
        .foo()
        .get(["bar", "baz"])
        .typed::<Function<(), String>>();
    let qux_typed = function_baz.function().call(());
    qux.pull();
    qux_typed.pull();
    // (Releases of the intermediate results may follow: nothing else holds them.)
    eventually("the client sent the chain", || {
        log.lock().unwrap().len() >= 7
    })
    .await;
    assert_eq!(
        log.lock().unwrap()[..5],
        [
            r#"["push",["pipeline",0,["foo"],[]]]"#,
            r#"["push",["pipeline",1,["bar","baz"],[]]]"#,
            r#"["push",["pipeline",0,["foo"],[]]]"#,
            r#"["push",["pipeline",3,["bar","baz"]]]"#,
            r#"["push",["pipeline",4,[],[]]]"#,
        ]
    );
    assert_eq!(
        log.lock().unwrap()[5..7],
        [r#"["pull",2]"#, r#"["pull",5]"#]
    );
    let _server = Session::start(b, Some(RpcStub::new(TestTarget)), Default::default());
    assert_eq!(qux.await.unwrap().as_str(), Some("qux"));
    assert_eq!(qux_typed.await.unwrap(), "qux");
    // Awaited whole, the function arrives typed inside the struct.
    let foo: Foo = api.foo().await.unwrap();
    assert_eq!(foo.bar.baz.call(()).await.unwrap(), "qux");
}

#[tokio::test]
async fn targets_and_promises_inside_values_travel_by_reference() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (client, _server, _, _) = pair(RpcStub::new(Hub::new(drops.clone())));
    let hub: Stub<Hub> = TypedStub::from_raw(client.main());
    // A value holding a local target, a pending promise of a remote target, and a stub.
    let local = TypedStub::local(Counter::new(10));
    let remote = hub.make(3);
    let map = std::collections::BTreeMap::from([("c", hub.make(4))]);
    let value = capwire::to_value(&(vec![local.clone()], Some(&remote), map)).unwrap();
    let back = hub.echo(value).await.unwrap();
    let list = back.as_array().unwrap();
    let echoed_local: RpcStub =
        capwire::from_value(list[0].as_array().unwrap()[0].clone()).unwrap();
    assert!(
        echoed_local.same_target(TypedStub::raw(&local)),
        "came home as the original"
    );
    let echoed_remote: Stub<Tracked> = capwire::from_value(list[1].clone()).unwrap();
    assert_eq!(echoed_remote.get().await.unwrap(), 3);
    assert_eq!(
        list[2]["c"]
            .as_stub()
            .unwrap()
            .call("get", ())
            .await
            .unwrap()
            .as_f64(),
        Some(4.0)
    );
    drop((back, echoed_remote, remote));
    eventually("both tracked objects were disposed", || {
        drops.load(Ordering::SeqCst) == 2
    })
    .await;
}

#[tokio::test]
async fn a_stub_that_comes_home_is_called_without_crossing_the_wire() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (client, _server, client_log, _) = pair(RpcStub::new(Hub::new(drops)));
    let hub: Stub<Hub> = TypedStub::from_raw(client.main());
    let counter = RpcStub::new(Counter::new(0));
    let back = hub.echo(counter.clone().into()).await.unwrap();
    let back = back.as_stub().unwrap().clone();
    assert!(back.same_target(&counter));
    let sent_before = client_log.lock().unwrap().len();
    assert_eq!(
        back.call("increment", (5,)).await.unwrap().as_f64(),
        Some(5.0)
    );
    assert_eq!(counter.get("value").await.unwrap().as_f64(), Some(5.0));
    assert_eq!(
        client_log.lock().unwrap().len(),
        sent_before,
        "no message was sent"
    );
}

/// Three sessions: `holder` is a client of `a` (which serves the counter) and of `b`
/// (which keeps what it is given).
struct Triangle {
    a_server: Session,
    holder_to_a: Session,
    holder_to_b: Session,
    b_server: Session,
    b_drops: Arc<AtomicUsize>,
}

fn triangle() -> Triangle {
    let (a1, a2) = channel(Duration::ZERO);
    let (b1, b2) = channel(Duration::ZERO);
    let b_drops = Arc::new(AtomicUsize::new(0));
    Triangle {
        a_server: Session::start(a2, Some(RpcStub::new(TestTarget)), Default::default()),
        holder_to_a: Session::start(a1, None, Default::default()),
        holder_to_b: Session::start(b1, None, Default::default()),
        b_server: Session::start(
            b2,
            Some(RpcStub::new(Hub::new(b_drops.clone()))),
            Default::default(),
        ),
        b_drops,
    }
}

#[tokio::test]
async fn a_forwarded_stub_is_proxied_through_its_holder_and_breaks_cleanly() {
    let t = triangle();
    let a: Stub<TestTarget> = TypedStub::from_raw(t.holder_to_a.main());
    let b: Stub<Hub> = TypedStub::from_raw(t.holder_to_b.main());
    let counter = a.make_counter(5).await.unwrap();
    // B uses a stub it got from the holder, which got it from A.
    assert_eq!(b.keep(TypedStub::raw(&counter).clone()).await.unwrap(), 1);
    let seven = b.call_kept(0, "increment").await.unwrap();
    assert_eq!(seven.as_f64(), Some(6.0));
    assert_eq!(
        counter.value().await.unwrap(),
        6,
        "the call reached A's counter"
    );
    let before = (t.holder_to_a.stats(), t.b_server.stats());

    // A goes away: B's calls on the forwarded stub fail with the reason, nothing hangs.
    t.a_server.close();
    let why = t.holder_to_a.closed().await;
    let e = b.call_kept(0, "increment").await.unwrap_err();
    assert_eq!(e.message(), why.message(), "{e}");
    assert!(before.0.imports >= 2);

    // B lets go; its tables and the holder's are back to their baseline.
    b.forget().await.unwrap();
    drop(counter);
    eventually("B released the forwarded stub", || {
        t.b_server.stats().exports == 1
    })
    .await;
    eventually("the holder dropped its export to B", || {
        t.holder_to_b.stats().exports == 1
    })
    .await;
    assert_eq!(t.holder_to_a.stats().imports, 0);
    assert_eq!(t.b_drops.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn dispose_runs_once_after_the_last_reference_anywhere() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (client, server, _, _) = pair(RpcStub::new(Hub::new(drops.clone())));
    let hub: Stub<Hub> = TypedStub::from_raw(client.main());
    let one = hub.make(1).await.unwrap();
    let again = one.clone(); // `dup`: no message, one import
    // The server keeps its own reference: the client handing it back.
    hub.keep(TypedStub::raw(&one).clone()).await.unwrap();
    drop(one);
    assert_eq!(again.get().await.unwrap(), 1);
    drop(again);
    eventually("the client released its import", || {
        client.stats().imports == 1
    })
    .await;
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the server still holds it");
    hub.forget().await.unwrap();
    eventually("disposed", || drops.load(Ordering::SeqCst) == 1).await;
    assert_eq!(server.stats().exports, 1);

    // When the session ends, everything it exported is released and disposed.
    let held: Vec<_> = futures::future::try_join_all((0..5).map(|n| hub.make(n).into_future()))
        .await
        .unwrap();
    assert_eq!(server.stats().exports, 6);
    client.close();
    server.closed().await;
    assert_eq!(server.stats().exports, 0);
    eventually("every export disposed", || {
        drops.load(Ordering::SeqCst) == 6
    })
    .await;
    let e = held[0].get().await.unwrap_err();
    assert!(!e.message().is_empty());
}

#[tokio::test]
async fn on_broken_fires_when_the_session_ends_or_the_promise_rejects() {
    let (client, server, _, _) = conformance();
    let api: Stub<TestTarget> = TypedStub::from_raw(client.main());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rejected = api.throw_error();
    let tx1 = tx.clone();
    rejected.on_broken(move |e| tx1.send(("promise", e)).unwrap());
    let (kind, e) = rx.recv().await.unwrap();
    assert_eq!((kind, e.name()), ("promise", "RangeError"));

    let counter = api.make_counter(1).await.unwrap();
    let tx2 = tx.clone();
    TypedStub::on_broken(&counter, move |e| tx2.send(("stub", e)).unwrap());
    let local = RpcStub::new(Counter::new(0));
    local.on_broken(move |e| tx.send(("local", e)).unwrap());
    server.close();
    let (kind, e) = rx.recv().await.unwrap();
    assert_eq!(kind, "stub");
    assert_eq!(e, client.closed().await);
    drop(local); // its callback is dropped unrun: the channel closes
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn calls_pipelined_on_a_rejected_call_reject_with_its_error() {
    let (client, _server, _, _) = conformance();
    let api = client.main();
    let failed = api.call("throwError", ());
    let method = failed.call("foo", ());
    let nested = failed.get("bar").call("baz", (1,));
    let typed: Stub<TestTarget> = TypedStub::from_raw(client.main());
    let counter_of_error: StubPromise<Counter> =
        TypedPromise::from_raw(typed.throw_error().typed());
    let via_typed = counter_of_error.increment(Some(1));
    for r in [
        method.await.map(drop),
        nested.await.map(drop),
        failed.await.map(drop),
        via_typed.await.map(drop),
    ] {
        let e = r.unwrap_err();
        assert_eq!((e.name(), e.message()), ("RangeError", "test error"));
    }
}

#[tokio::test]
async fn map_from_rust_runs_where_the_value_lives_in_one_message() {
    let (client, _server, client_log, _) = conformance();
    let api = client.main();
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct User {
        id: u32,
        name: String,
    }
    let sent_before = client_log.lock().unwrap().len();
    let users = api
        .call("listIds", (3,))
        .map(|id: capwire::RpcPromise| api.call("getUser", (id,)));
    let users: Vec<User> = users.typed().await.unwrap();
    let names: Vec<_> = users.iter().map(|u| (u.id, u.name.as_str())).collect();
    assert_eq!(names, [(1, "user1"), (2, "user2"), (3, "user3")]);
    let sent = client_log.lock().unwrap()[sent_before..].to_vec();
    assert_eq!(
        sent[..2],
        [
            r#"["push",["pipeline",0,["listIds"],[3]]]"#,
            r#"["push",["remap",1,[],[["import",0]],[["pipeline",-1,["getUser"],[["pipeline",0]]],["pipeline",1]]]]"#,
        ]
    );

    // Once per non-array value; null passes through; captures and structured results.
    let name = api
        .call("getUser", (4,))
        .map(|u: capwire::RpcPromise| u.get("name"));
    assert_eq!(name.await.unwrap().as_str(), Some("user4"));
    let none = api
        .call("returnNull", ())
        .map(|x: capwire::RpcPromise| api.call("square", (x,)));
    assert_eq!(none.await.unwrap(), Value::Null);
    let k = RpcStub::new(Counter::new(100));
    let rows = api.call("listIds", (2,)).map(|id: capwire::RpcPromise| {
        (api.call("square", (&id,)), k.call("increment", (&id,)), id)
    });
    let rows: Vec<(f64, f64, f64)> = rows.typed().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].0, rows[0].2, rows[1].0, rows[1].2),
        (1.0, 1.0, 4.0, 2.0)
    );
    let mut increments = [rows[0].1, rows[1].1];
    increments.sort_by(f64::total_cmp);
    assert!(
        increments == [101.0, 103.0] || increments == [102.0, 103.0],
        "{increments:?}"
    );
    let empty = api
        .call("listIds", (0,))
        .map(|id: capwire::RpcPromise| api.call("square", (id,)));
    assert_eq!(empty.await.unwrap(), Value::Array(vec![]));

    // A placeholder cannot be awaited or used after the mapper.
    let mut kept = None;
    let mapped = api.call("listIds", (1,)).map(|id: capwire::RpcPromise| {
        kept = Some(id.clone());
        id
    });
    let e = kept.unwrap().await.unwrap_err();
    assert!(e.message().contains("placeholder"), "{e}");
    assert_eq!(mapped.await.unwrap(), Value::Array(vec![1.into()]));
}

#[tokio::test]
async fn map_on_a_local_value_replays_the_mapper_here() {
    let local = capwire::RpcPromise::<Value>::resolved(Value::Array(vec![2.into(), 3.into()]));
    let double = Function::new(|n: f64| n * 2.0);
    let doubled = local
        .map(|x: capwire::RpcPromise| double.as_stub().call(Vec::<capwire::PathKey>::new(), (x,)));
    assert_eq!(
        doubled.await.unwrap(),
        Value::Array(vec![4.into(), 6.into()])
    );
}

#[tokio::test]
async fn a_method_read_as_a_property_is_a_function_that_calls_it() {
    let (client, _server, _, _) = conformance();
    let api = client.main();
    let counter = api.call("makeCounter", (5,));
    let increment: Function<(i64,), i64> = counter.get("increment").typed().await.unwrap();
    assert_eq!(increment.call((2,)).await.unwrap(), 7);
    assert_eq!(counter.get("value").await.unwrap().as_f64(), Some(7.0));
    // Private methods and unknown names still read as nothing.
    let vault = api.call("makeVault", ("s",));
    for name in ["matches", "secret", "nothing"] {
        assert_eq!(vault.get(name).await.unwrap(), Value::Undefined, "{name}");
    }
}
