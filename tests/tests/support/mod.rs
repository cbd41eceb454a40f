//! Shared helpers for the integration tests: the Node harness and servers.
#![allow(dead_code)]

use capwire::transport::TransportError;
use capwire::transport::memory::{MemoryTransport, channel};
use capwire::{RpcStub, Session};
use futures::{Sink, Stream};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// The Node harness directory (`tests/node`).
pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Makes sure the harness's npm packages are installed, running `npm ci` when
/// `node_modules` is missing. Fails with a clear message when Node or npm is absent.
pub fn ensure_node_modules() {
    ensure_npm_packages(
        &node_dir(),
        &["capnweb", "puppeteer-core", "typescript", "ws"],
    );
}

/// Runs `npm ci` in `dir` (one process at a time) unless every package of `packages` is
/// installed in its `node_modules`. Fails with a clear message when npm is absent.
pub fn ensure_npm_packages(dir: &std::path::Path, packages: &[&str]) {
    let lock = std::fs::File::create(std::env::temp_dir().join("capwire-npm-ci.lock"))
        .expect("create the npm install lock file");
    lock.lock().expect("take the npm install lock");
    let installed = |p: &&str| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    };
    if !packages.iter().all(installed) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run `npm ci` in {}: {e}; the interop tests need Node.js 20+ and npm",
                    dir.display()
                )
            });
        assert!(status.success(), "`npm ci` failed in {}", dir.display());
    }
    let _ = lock.unlock();
}

/// Runs a Node script of the harness to completion and returns (success, stdout, stderr).
pub fn run_node(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    ensure_node_modules();
    let mut child = Command::new("node")
        .args(args)
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node: {e}; the interop tests need Node.js 20+"));
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).expect("write to node");
        }
    }
    let out = child.wait_with_output().expect("wait for node");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the pinned TypeScript compiler (`tests/node/node_modules/typescript`) in the
/// harness directory with `args`, and returns its diagnostics outside `node_modules`
/// (empty when it passed). capnweb 0.12's own declarations do not pass a library check
/// under TypeScript 5.9 (two TS2574 errors in `Stubify`), so they are left out of the
/// verdict, while the generated declarations and the clients are held to it.
pub fn tsc(args: &[&str]) -> String {
    let mut all = vec!["node_modules/typescript/bin/tsc", "--pretty", "false"];
    all.extend_from_slice(args);
    let (_, stdout, stderr) = run_node(&all, None);
    let mut ours = String::new();
    let mut keep = false;
    for line in stdout.lines().chain(stderr.lines()) {
        // A diagnostic starts at column 0; its continuation lines are indented.
        if !line.starts_with(' ') {
            keep = !line.starts_with("node_modules/");
        }
        if keep {
            ours.push_str(line);
            ours.push('\n');
        }
    }
    ours.trim().to_owned()
}

/// Runs the Node harness's capnweb client against `url` and asserts every row passed.
pub fn assert_node_client_passes(args: &[&str]) {
    let mut all = vec!["client.mjs"];
    all.extend_from_slice(args);
    assert_node_checks_pass(&all);
}

/// Runs a Node harness script that prints a line per check (`"ok":false` for a failed
/// one) and a summary (`"failed":0`), and asserts every check passed.
pub fn assert_node_checks_pass(args: &[&str]) {
    let (ok, stdout, stderr) = run_node(args, None);
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"ok\":false"))
        .collect();
    assert!(
        ok && failed.is_empty() && stdout.contains("\"failed\":0"),
        "{} failed checks:\n{}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        args[0],
        failed.join("\n")
    );
}

/// Starts the Rust conformance server in this process on a free port.
pub async fn start_conformance_server() -> SocketAddr {
    let (server, addr) = capwire_examples::conformance::bind("127.0.0.1:0")
        .await
        .expect("bind");
    tokio::spawn(capwire_examples::conformance::run(server));
    addr
}

/// The Node conformance server (capnweb), killed on drop.
pub struct NodeServer {
    child: Child,
    pub port: u16,
}

impl NodeServer {
    pub fn start() -> NodeServer {
        ensure_node_modules();
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(node_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start node server.mjs: {e}; the interop tests need Node.js 20+")
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("read the node server's first line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "node server printed {line:?}, expected `listening on http://127.0.0.1:PORT`"
                )
            });
        NodeServer { child, port }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// In-memory sessions that record what they send

/// A memory transport end that records every message it sends.
pub struct Recorded {
    pub inner: MemoryTransport,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Stream for Recorded {
    type Item = Result<String, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl Sink<String> for Recorded {
    type Error = TransportError;
    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: String) -> Result<(), TransportError> {
        self.log.lock().unwrap().push(item.clone());
        Pin::new(&mut self.inner).start_send(item)
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

pub type Log = Arc<Mutex<Vec<String>>>;

/// A client session and a server session (serving `main`), each recording what it sends.
pub fn pair(main: RpcStub) -> (Session, Session, Log, Log) {
    let (a, b) = channel(Duration::ZERO);
    let (server, server_log) = recording(b, Some(main));
    let (client, client_log) = recording(a, None);
    (client, server, client_log, server_log)
}

/// A session on `end` (serving `main`, if any) that records every message it sends.
pub fn recording(end: MemoryTransport, main: Option<RpcStub>) -> (Session, Log) {
    let log = Log::default();
    let session = Session::start(
        Recorded {
            inner: end,
            log: log.clone(),
        },
        main,
        Default::default(),
    );
    (session, log)
}

/// Waits (yielding, bounded) until `cond` holds; fails the test if it never does.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// A host worker's entrypoint whose `ping()` answers `"pong"`.
pub struct Ping;

impl capwire::host::Entrypoint for Ping {
    fn new(_: capwire::host::Env, _: capwire::host::Ctx) -> Self {
        Ping
    }
}

#[capwire::entrypoint]
impl Ping {
    /// `"pong"`.
    pub fn ping(&self) -> String {
        "pong".into()
    }
}

/// A host serving `config` (a `workers.toml` whose workers' `main` is `"Ping"`), started.
pub async fn ping_host(config: &str) -> capwire::host::Serving {
    capwire::host::Host::builder()
        .entrypoint::<Ping>("Ping")
        .config_str(config, "workers.toml")
        .expect("a valid config")
        .start()
        .await
        .expect("the host starts")
}
