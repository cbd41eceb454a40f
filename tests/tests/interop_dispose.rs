//! The capnweb client disposes stubs to the Rust server's targets: each target is dropped
//! (its dispose hook runs) while the session is still open. Alone in its test binary, so
//! the process-wide count of live counters is this test's alone.

mod support;

use capwire_examples::conformance::Counter;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_disposed_by_a_capnweb_client_are_dropped_on_the_server() {
    support::ensure_node_modules();
    let addr = support::start_conformance_server().await;
    let url = format!("ws://{addr}/");
    let before = Counter::live();
    let mut child = Command::new("node")
        .args(["dispose.mjs", &url, "50"])
        .current_dir(support::node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("could not run node; the interop tests need Node.js 20+");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let line = tokio::task::block_in_place(|| lines.next());
    assert_eq!(
        line.and_then(Result::ok).as_deref(),
        Some("released"),
        "dispose.mjs failed before releasing"
    );
    // The session is still open (the script waits for us), and every counter is gone.
    assert_eq!(Counter::live(), before, "counters left alive after dispose");
    writeln!(stdin, "close").expect("write to node");
    let status = tokio::task::block_in_place(|| child.wait()).expect("wait for node");
    assert!(status.success());
}
