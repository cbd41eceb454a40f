//! The real capnweb client (Node) drives the Rust conformance server: every covered row,
//! over WebSocket and over HTTP batch.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capnweb_client_passes_every_row_over_websocket() {
    let addr = support::start_conformance_server().await;
    let url = format!("ws://{addr}/");
    tokio::task::spawn_blocking(move || support::assert_node_client_passes(&[&url]))
        .await
        .expect("node client task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capnweb_client_passes_every_row_over_http_batch() {
    let addr = support::start_conformance_server().await;
    let url = format!("http://{addr}/");
    tokio::task::spawn_blocking(move || support::assert_node_client_passes(&["--batch", &url]))
        .await
        .expect("node client task");
}
