//! The Rust client drives a Node server written with capnweb that serves the conformance
//! rows, over WebSocket and over HTTP batch.

mod support;

use capwire::{BatchClient, BigInt, Bytes, Date, RpcError, RpcObject, RpcStub, Value};
use std::sync::Arc;

fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_passes_every_row_against_capnweb_over_websocket() {
    let node = support::NodeServer::start();
    let api: RpcStub = capwire::connect(&node.ws_url()).await.expect("connect");

    assert_eq!(f(&api.call("square", (5,)).await.unwrap()), 25.0);
    assert_eq!(f(&api.call("square", (-1.5,)).await.unwrap()), 2.25);
    assert_eq!(f(&api.call("add", (2, 3)).await.unwrap()), 5.0);

    // callSquare with the server's own main stub: { result: 36 }.
    let r = api.call("callSquare", (api.clone(), 6)).await.unwrap();
    assert_eq!(r.get("result").map(f), Some(36.0));

    let err = api.call("throwError", ()).await.unwrap_err();
    assert_eq!((err.name(), err.message()), ("RangeError", "test error"));

    // makeCounter, pipelined: increment on the unresolved counter.
    let counter = api.call("makeCounter", (2,));
    assert_eq!(f(&counter.call("increment", (3,)).await.unwrap()), 5.0);
    assert_eq!(f(&counter.call("increment", ()).await.unwrap()), 6.0);
    assert_eq!(f(&counter.get("value").await.unwrap()), 6.0);
    let counter: RpcStub = counter.typed().await.unwrap();
    assert_eq!(f(&counter.get("value").await.unwrap()), 6.0);

    let fresh = api.call("getCounter", ());
    assert_eq!(f(&fresh.call("increment", ()).await.unwrap()), 1.0);

    let ten = api.call("makeCounter", (10,)).as_stub();
    assert_eq!(
        f(&api.call("incrementCounter", (ten.clone(),)).await.unwrap()),
        11.0
    );
    assert_eq!(
        f(&api.call("incrementCounter", (ten, 5)).await.unwrap()),
        16.0
    );

    // Property pipelining.
    assert_eq!(
        api.call("getUser", (7,))
            .get("name")
            .await
            .unwrap()
            .as_str(),
        Some("user7")
    );

    let fib: Vec<u64> = api.call("generateFibonacci", (10,)).typed().await.unwrap();
    assert_eq!(fib, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
    assert_eq!(api.call("returnNull", ()).await.unwrap(), Value::Null);
    assert_eq!(
        api.call("returnUndefined", ()).await.unwrap(),
        Value::Undefined
    );
    assert_eq!(f(&api.call("returnNumber", (-3.25,)).await.unwrap()), -3.25);
    let ids: Vec<u32> = api.call("listIds", (5,)).typed().await.unwrap();
    assert_eq!(ids, [1, 2, 3, 4, 5]);

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct User {
        id: u32,
        name: String,
    }
    let user: User = api.call("getUser", (3,)).typed().await.unwrap();
    assert_eq!(
        user,
        User {
            id: 3,
            name: "user3".into()
        }
    );

    for v in echo_values() {
        let back = api.call("echo", (v.clone(),)).await.unwrap();
        assert_eq!(back, v, "echo changed the value");
    }

    echo_a_local_object_comes_home(&api).await;

    // delay does not block other calls: the fast call settles first.
    let slow = api.call("delay", (200, "slow"));
    let fast = api.call("square", (3,));
    tokio::select! {
        biased;
        r = fast => assert_eq!(f(&r.unwrap()), 9.0),
        _ = slow.clone() => panic!("the slow call settled before the fast one"),
    }
    assert_eq!(slow.await.unwrap().as_str(), Some("slow"));

    let vault = api.call("makeVault", ("s3cret",));
    assert_eq!(
        vault.call("open", ("x",)).await.unwrap(),
        Value::Bool(false)
    );
    assert_eq!(
        vault.call("open", ("s3cret",)).await.unwrap(),
        Value::Bool(true)
    );
    assert_eq!(f(&vault.get("opens").await.unwrap()), 2.0);

    let calls: Vec<_> = (0..100).map(|i| api.call("square", (i,))).collect();
    for (i, r) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(f(&r.unwrap()), (i * i) as f64);
    }
}

fn echo_values() -> Vec<Value> {
    vec![
        serde_json::json!([1, [2, [3, []]]]).into(),
        serde_json::json!({"a": {"b": {"c": [1, null, "x"]}}}).into(),
        "héllo 🌍 \u{0} \"q\" \\ \n".into(),
        "".into(),
        Value::Bytes(Bytes::from(vec![0u8, 1, 2, 253, 254, 255])),
        Value::Bytes(Bytes::default()),
        Value::Date(Date::from_millis(1749342170815.0)),
        Value::BigInt(BigInt::parse("12345678901234567890").unwrap()),
        Value::BigInt(BigInt::from(-5i64)),
        Value::Array(vec![1.into(), Value::Undefined, 3.into()]),
        Value::object([("a", Value::Undefined), ("b", 1.into())]),
        f64::INFINITY.into(),
        f64::NEG_INFINITY.into(),
        f64::NAN.into(),
        Value::Error(RpcError::range("boom")),
        9_007_199_254_740_991i64.into(),
        u64::MAX.into(),
        true.into(),
    ]
}

/// A Rust object passed to the server and echoed back resolves to the original object:
/// calls on it do not cross the wire.
async fn echo_a_local_object_comes_home(api: &RpcStub) {
    struct Local;
    impl RpcObject for Local {
        fn call(self: Arc<Self>, method: &str, _args: Vec<Value>) -> capwire::CallFuture {
            let r = match method {
                "ping" => Ok("pong".into()),
                other => Err(RpcError::not_a_function(other)),
            };
            Box::pin(std::future::ready(r))
        }
    }
    let mine = RpcStub::new(Local);
    let back: RpcStub = api.call("echo", (mine.clone(),)).typed().await.unwrap();
    assert!(
        back.same_target(&mine),
        "the echoed stub is not the original object"
    );
    assert_eq!(back.call("ping", ()).await.unwrap().as_str(), Some("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_passes_rows_against_capnweb_over_http_batch() {
    let node = support::NodeServer::start();

    // One batch: pipelined makeCounter, increment on it, and incrementCounter with it.
    let batch = BatchClient::new(node.http_url());
    let api = batch.main();
    let counter = api.call("makeCounter", (2,));
    let a = counter.call("increment", (3,));
    let b = api.call("incrementCounter", (counter.clone(), 4));
    let sq = api.call("square", (4,));
    let err = api.call("throwError", ());
    let user = api.call("getUser", (9,)).get("name");
    for p in [&a, &b, &sq, &err, &user] {
        p.pull();
    }
    batch.send().await.expect("batch");
    assert_eq!(f(&a.await.unwrap()), 5.0);
    assert_eq!(f(&b.await.unwrap()), 9.0);
    assert_eq!(f(&sq.await.unwrap()), 16.0);
    assert_eq!(err.await.unwrap_err().name(), "RangeError");
    assert_eq!(user.await.unwrap().as_str(), Some("user9"));

    // Values round-trip in a batch too.
    let batch = BatchClient::new(node.http_url());
    let api = batch.main();
    let echoes: Vec<_> = echo_values()
        .into_iter()
        .map(|v| (v.clone(), api.call("echo", (v,))))
        .collect();
    for (_, p) in &echoes {
        p.pull();
    }
    batch.send().await.expect("batch");
    for (v, p) in echoes {
        assert_eq!(p.await.unwrap(), v);
    }

    // A promise not pulled before sending fails with a clear error, not a hang.
    let batch = BatchClient::new(node.http_url());
    let unpulled = batch.main().call("square", (2,));
    batch.send().await.expect("batch");
    let e = unpulled.await.unwrap_err();
    assert!(e.message().contains("Batch RPC request ended"), "{e}");
}
