//! The capability rows of the conformance service (`callFunction`, `callSquare`,
//! `newCounterFn`, `foo`, `useCounter` with a stub from another session, `echo` with stubs
//! inside values, `listIds(n).map(id => getUser(id))`, errors through pipelines), driven by
//! the Rust client over WebSocket against capnweb's Node server and against the Rust one.

mod support;

use capwire::{Function, PathKey, RpcPromise, RpcStub, Value};
use capwire_examples::conformance::Counter;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(serde::Deserialize, Debug, PartialEq)]
struct User {
    id: u32,
    name: String,
}

async fn capability_rows(url: &str) {
    let api: RpcStub = capwire::connect(url).await.expect("connect");

    // callSquare: a promise inside the result resolves on our side.
    let r = api.call("callSquare", (api.clone(), 6)).await.unwrap();
    assert_eq!(r["result"].as_f64(), Some(36.0), "callSquare");

    // callFunction: the server calls our closure in the middle of its call.
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let times_ten = Function::new(move |x: f64| {
        counted.fetch_add(1, Ordering::SeqCst);
        x * 10.0
    });
    let r = api.call("callFunction", (times_ten, 3)).await.unwrap();
    assert_eq!(r["result"].as_f64(), Some(30.0), "callFunction");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let slow = Function::new(|x: f64| async move {
        tokio::task::yield_now().await;
        Ok::<_, capwire::RpcError>(format!("async {x}"))
    });
    let r = api.call("callFunction", (slow, 4)).await.unwrap();
    assert_eq!(r["result"].as_str(), Some("async 4"));

    // newCounterFn: a closure that lives on the server.
    let f: Function<(Option<f64>,), f64> = api.call("newCounterFn", ()).typed().await.unwrap();
    let mut totals = Vec::new();
    for n in [Some(2.0), Some(1.0), Some(-5.0), None] {
        totals.push(f.call((n,)).await.unwrap());
    }
    assert_eq!(totals, [2.0, 3.0, -2.0, -2.0], "newCounterFn");

    // foo().bar.baz(): by path, and typed.
    let qux = api.call("foo", ()).call(["bar", "baz"], ()).await.unwrap();
    assert_eq!(qux.as_str(), Some("qux"), "foo by path");
    let function_baz = api
        .call("foo", ())
        .get(["bar", "baz"])
        .typed::<Function<(), String>>();
    assert_eq!(
        function_baz.function().call(()).await.unwrap(),
        "qux",
        "foo typed"
    );

    // useCounter with a counter from another session: the server calls through us.
    let other: RpcStub = capwire::connect(url).await.expect("second session");
    let theirs: RpcStub = other.call("makeCounter", (5,)).typed().await.unwrap();
    let seven = api.call("useCounter", (theirs.clone(), 2)).await.unwrap();
    assert_eq!(seven.as_f64(), Some(7.0), "useCounter");
    assert_eq!(theirs.get("value").await.unwrap().as_f64(), Some(7.0));
    // A pending promise from the other session works as well.
    let pending = other.call("makeCounter", (10,));
    let r = api.call("useCounter", (&pending, 3)).await.unwrap();
    assert_eq!(r.as_f64(), Some(13.0), "useCounter with a promise");

    // echo with stubs inside values: ours come home, theirs still call the original.
    let local = RpcStub::new(Counter::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let plus_one = Function::new(move |x: f64| {
        counted.fetch_add(1, Ordering::SeqCst);
        x + 1.0
    });
    let server_counter: RpcStub = api.call("makeCounter", (1,)).typed().await.unwrap();
    let sent = Value::object([
        ("mine", local.clone().into()),
        (
            "list",
            Value::Array(vec![server_counter.clone().into(), plus_one.clone().into()]),
        ),
    ]);
    let back = api.call("echo", (sent,)).await.unwrap();
    let mine = back["mine"].as_stub().expect("a stub");
    assert!(mine.same_target(&local), "our counter came home");
    assert_eq!(
        mine.call("increment", (4,)).await.unwrap().as_f64(),
        Some(4.0)
    );
    let theirs = back["list"][0].as_stub().expect("a stub");
    assert_eq!(
        theirs.call("increment", ()).await.unwrap().as_f64(),
        Some(2.0)
    );
    let f: Function<(f64,), f64> = capwire::from_value(back["list"][1].clone()).unwrap();
    assert!(f.as_stub().same_target(plus_one.as_stub()));
    assert_eq!(f.call((1.0,)).await.unwrap(), 2.0);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the echoed function ran here"
    );
    // A call pipelined on an echoed function goes back to the server and home again.
    let via_server = api
        .call("echo", (Value::object([("f", plus_one.clone().into())]),))
        .call("f", (7,));
    assert_eq!(via_server.await.unwrap().as_f64(), Some(8.0));

    // listIds(n).map(id => getUser(id)): one remap.
    let users: Vec<User> = api
        .call("listIds", (3,))
        .map(|id: RpcPromise| api.call("getUser", (id,)))
        .typed()
        .await
        .unwrap();
    assert_eq!(
        users,
        (1..=3)
            .map(|id| User {
                id,
                name: format!("user{id}")
            })
            .collect::<Vec<_>>(),
        "listIds.map"
    );
    let single = api.call("getUser", (4,)).map(|u: RpcPromise| u.get("name"));
    assert_eq!(single.await.unwrap().as_str(), Some("user4"));
    let nothing = api
        .call("returnNull", ())
        .map(|x: RpcPromise| api.call("square", (x,)));
    assert_eq!(nothing.await.unwrap(), Value::Null);
    let counters = api
        .call("makeCounter", (4,))
        .map(|c: RpcPromise| c.call("increment", (1,)));
    assert_eq!(counters.await.unwrap().as_f64(), Some(5.0));

    // Errors through pipelines.
    let failed = api.call("throwError", ());
    for r in [
        failed.call("foo", ()).await,
        failed.get("bar").call("baz", (1,)).await,
        failed.call(Vec::<PathKey>::new(), ()).await,
    ] {
        let e = r.unwrap_err();
        assert_eq!((e.name(), e.message()), ("RangeError", "test error"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_rows_pass_against_capnweb() {
    let node = support::NodeServer::start();
    capability_rows(&node.ws_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_rows_pass_against_the_rust_server() {
    let addr = support::start_conformance_server().await;
    capability_rows(&format!("ws://{addr}/")).await;
}
