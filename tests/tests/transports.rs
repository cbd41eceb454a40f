//! The transports, Rust to Rust: RPC mounted in a user's own axum router, HTTP batch
//! client against the Rust server, and the 405 for other methods.

mod support;

use capwire::{BatchClient, Stub};
use capwire::{TypedPromise, TypedStub};
use capwire_examples::conformance::TestTarget;

/// Serves `/rpc` in a router that also has a route of its own, as an application would.
async fn mounted() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route(
            "/rpc",
            capwire::rpc_route(|| TestTarget, Default::default()),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn rpc_mounted_in_a_users_router_speaks_websocket() {
    let addr = mounted().await;
    let api: Stub<TestTarget> = capwire::connect(&format!("ws://{addr}/rpc")).await.unwrap();
    assert_eq!(api.square(9.0).await.unwrap(), 81.0);
    assert_eq!(api.make_counter(1).increment(None).await.unwrap(), 2);
}

#[tokio::test]
async fn the_batch_client_pipelines_against_the_rust_server() {
    let addr = mounted().await;
    let batch = BatchClient::new(format!("http://{addr}/rpc"));
    let api: Stub<TestTarget> = TypedStub::from_raw(batch.main());
    let counter = api.make_counter(2);
    let five = counter.increment(Some(3));
    let nine = api.increment_counter(TypedPromise::as_stub(&counter), Some(4));
    five.pull();
    nine.pull();
    batch.send().await.unwrap();
    assert_eq!(five.await.unwrap(), 5);
    assert_eq!(nine.await.unwrap(), 9);
}

#[tokio::test]
async fn other_methods_on_the_rpc_path_answer_405() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = mounted().await;
    for method in ["PUT", "DELETE", "PATCH"] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} /rpc HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 405"), "{method}: {resp}");
    }
}

/// Sends `GET path` without an upgrade and returns the response's head, lowercased.
async fn plain_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    resp.split("\r\n\r\n").next().unwrap_or("").to_lowercase()
}

#[tokio::test]
async fn a_get_without_an_upgrade_answers_405_with_allow_on_every_rpc_path() {
    // A route mounted in a user's router, a capwire::Server, and a host worker.
    let mounted = mounted().await;
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let served = server.local_addr().unwrap();
    tokio::spawn(server.serve(|| TestTarget));
    let serving =
        support::ping_host("[[worker]]\nname = \"api\"\nmain = \"Ping\"\nlisten = \"127.0.0.1:0\"")
            .await;
    let hosted = serving.addr("api").unwrap();
    for (addr, path) in [(mounted, "/rpc"), (served, "/"), (hosted, "/")] {
        let head = plain_get(addr, path).await;
        assert!(head.starts_with("http/1.1 405"), "{path} on {addr}: {head}");
        assert!(head.contains("\r\nallow: post"), "{path} on {addr}: {head}");
    }
    serving.stop().await.unwrap();
}
