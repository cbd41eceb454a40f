//! The Workers-style host: entrypoints with env and ctx, bindings in-process and over
//! WebSocket giving the same answers, named entrypoints, `wait_until`, graceful shutdown,
//! and configuration errors naming file and key.

mod support;

use capwire::host::{Ctx, Entrypoint, Env, Host};
use capwire::{RpcError, Stub, TypedStub, Value, entrypoint};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

pub struct WorkerB;

impl Entrypoint for WorkerB {
    fn new(_env: Env, _ctx: Ctx) -> Self {
        INSTANCES.fetch_add(1, Ordering::SeqCst);
        WorkerB
    }
}

/// Instances of `WorkerB` made so far (in this test binary).
static INSTANCES: AtomicUsize = AtomicUsize::new(0);

#[entrypoint]
impl WorkerB {
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// HTTP: answers `"<METHOD> <path> <body>"`.
    pub async fn fetch(
        &self,
        request: capwire::http::Request<capwire::Body>,
    ) -> Result<capwire::http::Response<capwire::Body>, RpcError> {
        if request.uri().path() == "/echo" {
            // The request body streams straight back as the response body.
            return Ok(capwire::http::Response::new(request.into_body()));
        }
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|e| RpcError::error(e.to_string()))?;
        let text = format!(
            "{} {} {}",
            parts.method,
            parts.uri.path(),
            String::from_utf8_lossy(&body)
        );
        Ok(capwire::http::Response::new(capwire::Body::from(text)))
    }
}

pub struct AdminEntrypoint;

impl Entrypoint for AdminEntrypoint {
    fn new(_env: Env, _ctx: Ctx) -> Self {
        AdminEntrypoint
    }
}

#[entrypoint]
impl AdminEntrypoint {
    pub fn whoami(&self) -> String {
        "admin".into()
    }
}

/// A gate a `signup`'s recorded event waits on, and how many events it recorded.
type Gate = Arc<(Notify, AtomicUsize)>;

/// Gates by name, one per test that uses `signup`.
static GATES: std::sync::Mutex<Vec<(String, Gate)>> = std::sync::Mutex::new(Vec::new());

fn gate(name: &str) -> Gate {
    let mut gates = GATES.lock().unwrap();
    if let Some((_, g)) = gates.iter().find(|(n, _)| n == name) {
        return g.clone();
    }
    let g = Gate::default();
    gates.push((name.to_owned(), g.clone()));
    g
}

pub struct WorkerA {
    env: Env,
    ctx: Ctx,
}

impl Entrypoint for WorkerA {
    fn new(env: Env, ctx: Ctx) -> Self {
        WorkerA { env, ctx }
    }
}

#[entrypoint]
impl WorkerA {
    pub async fn compute(&self) -> Result<i64, RpcError> {
        self.env
            .service::<Stub<WorkerB>>("WORKER_B")?
            .add(1, 2)
            .await
    }

    pub async fn admin(&self) -> Result<String, RpcError> {
        self.env
            .service::<Stub<AdminEntrypoint>>("ADMIN")?
            .whoami()
            .await
    }

    /// `POST <path>` with `body` to worker B's `fetch`, through the binding.
    pub async fn proxy(&self, path: String, body: String) -> Result<String, RpcError> {
        let request = capwire::http::Request::post(path)
            .body(capwire::Body::from(body))
            .map_err(|e| RpcError::error(e.to_string()))?;
        let response = self.env.fetcher("WORKER_B")?.fetch(request).await?;
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .map_err(|e| RpcError::error(e.to_string()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Streams `chunks` chunks of 64 KiB through worker B's `/echo`; answers how many
    /// bytes came back.
    pub async fn stream_through(&self, chunks: usize) -> Result<usize, RpcError> {
        let body = futures::stream::iter(
            (0..chunks).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 64 << 10]))),
        );
        let request = capwire::http::Request::post("/echo")
            .body(capwire::Body::from_stream(body))
            .map_err(|e| RpcError::error(e.to_string()))?;
        let response = self.env.fetcher("WORKER_B")?.fetch(request).await?;
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| RpcError::error(e.to_string()))?;
        Ok(bytes.len())
    }

    /// `WORKER_B.add(a, b)` through an untyped stub, by name.
    pub async fn add_by_name(&self, a: i64, b: i64) -> Result<Value, RpcError> {
        self.env.service_raw("WORKER_B")?.call("add", (a, b)).await
    }

    pub fn greet(&self, name: String) -> Result<String, RpcError> {
        Ok(format!("{}, {name}!", self.env.var::<String>("GREETING")?))
    }

    pub fn limits(&self) -> Result<serde_json::Value, RpcError> {
        self.env.var("LIMITS")
    }

    /// Hands `wait_until` work that fails with `message`.
    pub fn fail_later(&self, message: String) {
        self.ctx.wait_until(async move { Err(message) });
    }

    /// Returns at once; records the event afterwards.
    pub fn signup(&self, gate_name: String) -> String {
        let gate = gate(&gate_name);
        self.ctx.wait_until(async move {
            gate.0.notified().await;
            gate.1.fetch_add(1, Ordering::SeqCst);
            Ok::<_, RpcError>(())
        });
        "welcome".into()
    }
}

fn builder() -> capwire::host::HostBuilder {
    Host::builder()
        .entrypoint::<WorkerA>("WorkerA")
        .entrypoint::<WorkerB>("WorkerB")
        .entrypoint::<AdminEntrypoint>("AdminEntrypoint")
}

const WORKER_A: &str = r#"
[[worker]]
name = "worker-a"
main = "WorkerA"
services = [
  { binding = "WORKER_B", service = "worker-b" },
  { binding = "ADMIN", service = "worker-b", entrypoint = "AdminEntrypoint" },
]

[worker.vars]
GREETING = "Hello"
LIMITS = { max = 3, names = ["a", "b"] }
"#;

/// worker B alone.
const WORKER_B_ONLY: &str = "[[worker]]\nname = \"worker-b\"\nmain = \"WorkerB\"\n";

/// worker A with worker B in the same host.
fn all_local() -> String {
    format!(
        "{WORKER_A}\n[[worker]]\nname = \"worker-b\"\nmain = \"WorkerB\"\nentrypoints = [\"AdminEntrypoint\"]\n"
    )
}

/// worker-b served over WebSocket by its own host; returns it with the address.
async fn remote_b() -> (Host, std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = r#"
        [[worker]]
        name = "worker-b"
        main = "WorkerB"
        entrypoints = ["AdminEntrypoint"]
        listen = "127.0.0.1:0"
    "#;
    let host = builder().config_str(config, "b.toml").unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let serving = host.clone();
    tokio::spawn(async move {
        serving
            .serve_until(
                async move {
                    let _ = stop_rx.await;
                },
                move |bound| {
                    let _ = addr_tx.send(bound[0].1);
                },
            )
            .await
    });
    (host, addr_rx.await.unwrap(), stop_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_give_the_same_answers_in_process_and_remote() {
    let local = builder().config_str(&all_local(), "local.toml").unwrap();
    let (_b, addr, _stop) = remote_b().await;
    let remote = builder()
        .config_str(
            &format!("{WORKER_A}\n[[worker]]\nname = \"worker-b\"\nurl = \"ws://{addr}\"\n"),
            "remote.toml",
        )
        .unwrap();
    for host in [&local, &remote] {
        let a: Stub<WorkerA> = host.service("worker-a", None).unwrap();
        assert_eq!(a.compute().await.unwrap(), 3);
        assert_eq!(a.admin().await.unwrap(), "admin");
        assert_eq!(a.add_by_name(1, 2).await.unwrap().as_f64(), Some(3.0));
        assert_eq!(a.stream_through(40).await.unwrap(), 40 << 16);
        assert_eq!(
            a.proxy("/hello?x=1", "ping").await.unwrap(),
            "POST /hello ping"
        );
        assert_eq!(a.greet("Ada").await.unwrap(), "Hello, Ada!");
        assert_eq!(
            a.limits().await.unwrap(),
            serde_json::json!({ "max": 3, "names": ["a", "b"] })
        );
    }
}

#[tokio::test]
async fn every_invocation_gets_a_fresh_instance() {
    let host = builder().config_str(WORKER_B_ONLY, "b.toml").unwrap();
    let before = INSTANCES.load(Ordering::SeqCst);
    for _ in 0..3 {
        let b: Stub<WorkerB> = host.service("worker-b", None).unwrap();
        assert_eq!(b.add(2, 2).await.unwrap(), 4);
    }
    assert!(INSTANCES.load(Ordering::SeqCst) >= before + 3);
}

#[tokio::test]
async fn wait_until_work_runs_after_the_result_and_shutdown_waits_for_it() {
    let gate = gate("drained");
    let host = builder().config_str(&all_local(), "a.toml").unwrap();
    let a: Stub<WorkerA> = host.service("worker-a", None).unwrap();
    // The call returns while its recorded event is still waiting on the gate.
    assert_eq!(a.signup("drained").await.unwrap(), "welcome");
    assert_eq!(
        gate.1.load(Ordering::SeqCst),
        0,
        "recorded before the result"
    );
    // A graceful shutdown waits for it. The gate opens as the shutdown begins; on this
    // single-threaded runtime the work can only finish if `serve_until` waits for it.
    let opener = gate.clone();
    host.serve_until(async move { opener.0.notify_one() }, |_| {})
        .await
        .unwrap();
    let recorded_at_return = gate.1.load(Ordering::SeqCst);
    assert_eq!(
        recorded_at_return, 1,
        "serve_until returned before the work finished"
    );
}

#[tokio::test]
async fn a_shutdown_waits_no_longer_than_its_grace_period() {
    let host = builder()
        .shutdown_grace(Duration::from_millis(50))
        .config_str(&all_local(), "a.toml")
        .unwrap();
    let a: Stub<WorkerA> = host.service("worker-a", None).unwrap();
    a.signup("never").await.unwrap(); // its work waits for a gate never opened
    assert!(
        !host.drain().await,
        "the drain gave up after the grace period"
    );
}

#[test]
fn configuration_errors_name_the_file_and_key() {
    let cases = [
        (
            "[[worker]]\nname = \"a\"\nmain = \"WorkerA\"\nservices = [{ binding = \"B\", service = \"nope\" }]\n",
            "bad.toml: worker[0].services[0].service: no worker is named \"nope\"",
        ),
        (
            "[[worker]]\nname = \"a\"\nmain = \"Missing\"\n",
            "bad.toml: worker[0].main: no entrypoint type \"Missing\" is registered with the host",
        ),
        (
            "[[worker]]\nname = \"a\"\nmain = \"WorkerA\"\nservices = [{ binding = \"B\", service = \"a\", entrypoint = \"Nope\" }]\n",
            "bad.toml: worker[0].services[0].entrypoint: worker \"a\" exports no entrypoint named \"Nope\"",
        ),
        (
            "[[worker]]\nname = \"a\"\n",
            "bad.toml: worker[0]: a worker needs `main` (runs here) or `url` (runs elsewhere)",
        ),
        (
            "[[worker]]\nname = \"a\"\nmain = \"WorkerA\"\n\n[[worker]]\nname = \"a\"\nurl = \"ws://x\"\n",
            "bad.toml: worker[1].name: two workers are named \"a\"",
        ),
        ("[[worker]]\nname = \"a\"\nmain = \n", "bad.toml: line 3: "),
        (
            "[[worker]]\nname = \"a\"\nmian = \"WorkerA\"\n",
            "bad.toml: line 3: unknown field `mian`",
        ),
    ];
    for (text, expected) in cases {
        let err = match builder().config_str(text, "bad.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.starts_with(expected),
            "for\n{text}\ngot: {err}\nwanted: {expected}"
        );
    }
    let missing = builder()
        .config_file("/nonexistent/workers.toml")
        .err()
        .unwrap();
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/workers.toml: (file): cannot read")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capnweb_client_calls_the_default_and_a_named_entrypoint() {
    let (_b, addr, _stop) = remote_b().await;
    let script = format!(
        r#"
        import {{ WebSocket }} from "ws";
        import {{ newWebSocketRpcSession }} from "capnweb";
        globalThis.WebSocket ??= WebSocket;
        const b = newWebSocketRpcSession("ws://{addr}/");
        const admin = newWebSocketRpcSession("ws://{addr}/AdminEntrypoint");
        console.log(JSON.stringify([await b.add(1, 2), await admin.whoami()]));
        process.exit(0);
        "#
    );
    let out = tokio::task::spawn_blocking(move || {
        support::run_node(&["--input-type=module", "-"], Some(&script))
    })
    .await
    .unwrap();
    assert!(out.0, "node failed: {}", out.2);
    assert_eq!(out.1.trim(), r#"[3,"admin"]"#);
}

/// Everything logged in this test binary, as text.
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
    .clone()
}

struct Writer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_errors_are_logged() {
    let logs = captured_logs();
    let host = builder().config_str(&all_local(), "a.toml").unwrap();
    let a: Stub<WorkerA> = host.service("worker-a", None).unwrap();
    a.fail_later("disk full (marker 7f3a)").await.unwrap();
    assert!(host.drain().await);
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("marker 7f3a"))
        .unwrap_or_else(|| panic!("the error was not logged:\n{text}"));
    assert!(
        line.contains("ERROR") && line.contains("wait_until task failed"),
        "{line}"
    );
    // Which worker, and which of its entrypoints, handed the work over.
    assert!(
        line.contains("worker=worker-a") && line.contains("entrypoint=\"WorkerA\""),
        "{line}"
    );
}

#[tokio::test]
async fn calling_connect_on_an_entrypoint_answers_not_supported() {
    let host = builder().config_str(WORKER_B_ONLY, "b.toml").unwrap();
    let b: Stub<WorkerB> = host.service("worker-b", None).unwrap();
    let e = TypedStub::raw(&b)
        .call("connect", ("example.com:80",))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "TypeError");
    assert!(e.message().contains("not supported"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_that_are_not_rpc_go_to_fetch() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_b, addr, _stop) = remote_b().await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET /some/page HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("GET /some/page "), "{response}");
}

#[tokio::test]
async fn the_runner_reports_every_config_error_before_starting() {
    let dir = std::env::temp_dir().join(format!("capwire-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("workers.toml");
    std::fs::write(
        &path,
        "[[worker]]\nname = \"a\"\nmain = \"Nope\"\nlisten = \"127.0.0.1:0\"\nservices = [{ binding = \"B\", service = \"b\" }]\n",
    )
    .unwrap();
    // It returns (rather than serving until Ctrl-C) because nothing starts.
    let err = capwire::host::run(builder(), &path)
        .await
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0]
            .ends_with("worker[0].main: no entrypoint type \"Nope\" is registered with the host"),
        "{err}"
    );
    assert!(
        lines[1].ends_with("worker[0].services[0].service: no worker is named \"b\""),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&path.display().to_string())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
