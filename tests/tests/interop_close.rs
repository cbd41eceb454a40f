//! The close handshake with capnweb (Node), both ways: a capwire server that aborts closes
//! with 3000 and the reason, as capnweb reads it; a capnweb peer's abort, and its close
//! code and reason, end the Rust session with that reason.

mod support;

use capwire::{BigInt, RpcStub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capnweb_reads_3000_and_the_reason_when_capwire_aborts() {
    let addr = support::start_conformance_server().await;
    let url = format!("ws://{addr}/");
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || support::run_node(&["close.mjs", "abort", &url], None))
            .await
            .expect("node task");
    assert!(ok, "close.mjs failed:\n{stdout}\n{stderr}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let error = seen["error"].as_str().expect("error");
    let reason = seen["reason"].as_str().expect("reason");
    assert!(error.contains("max_bigint_digits"), "{seen}");
    assert_eq!(seen["code"], 3000, "{seen}");
    assert!(!reason.is_empty() && reason.len() <= 123, "{seen}");
    assert!(
        error.contains(reason),
        "the reason is the abort's message: {seen}"
    );
}

/// A session to the Node server, its main stub, and what `on_broken` of that stub gets.
async fn node_session(
    node: &support::NodeServer,
) -> (
    capwire::Session,
    RpcStub,
    tokio::sync::oneshot::Receiver<capwire::RpcError>,
) {
    let session = capwire::connect_with(&node.ws_url(), None, Default::default())
        .await
        .expect("connect");
    let main = session.main();
    let (tx, rx) = tokio::sync::oneshot::channel();
    main.on_broken(move |e| drop(tx.send(e)));
    (session, main, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capnweb_abort_ends_the_rust_session_with_its_reason() {
    let node = support::NodeServer::start();
    let (session, main, broken) = node_session(&node).await;
    // More digits than capnweb's maxBigIntDigits (16384): capnweb aborts the session.
    let big = BigInt::parse(&format!("1{}", "0".repeat(20_000))).expect("a bigint");
    let error = main.call("echo", (big,)).await.expect_err("capnweb aborts");
    assert!(
        error
            .message()
            .contains("exceeds maximum length of 16384 digits"),
        "{error}"
    );
    assert_eq!(broken.await.expect("on_broken ran"), error);
    assert_eq!(session.closed().await, error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capnweb_close_with_3000_ends_the_rust_session_with_its_reason() {
    let node = support::NodeServer::start();
    let (session, main, broken) = node_session(&node).await;
    // The call that closes the socket is never answered: it fails with the close's reason.
    let error = main
        .call(
            "closeSocket",
            (3000, "the server is shutting down: ünïcode kept"),
        )
        .await
        .expect_err("the session ends");
    assert!(
        error
            .message()
            .contains("3000: the server is shutting down: ünïcode kept"),
        "{error}"
    );
    assert_eq!(broken.await.expect("on_broken ran"), error);
    assert_eq!(session.closed().await, error);
}
