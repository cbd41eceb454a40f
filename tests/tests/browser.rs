//! The browser example in headless Chromium: the example's server runs in this process,
//! `tests/node/browser.mjs` drives its page in the system's Chromium (Debian's
//! `chromium`, through puppeteer-core), and the test checks what the page reports
//! against values it computes itself.

mod support;

use capwire::CorsPolicy;
use capwire_examples::browser;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long the whole browser session may take before the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// The Chromium to drive: `$CAPWIRE_CHROMIUM`, else Debian's `/usr/bin/chromium`,
/// installed with `apt-get` when it is missing and the test may (as root, or with
/// password-less `sudo`), as the interop tests install their npm packages. Fails the test
/// (never skips it) when there is none.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CAPWIRE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !path.exists() && std::env::var_os("CAPWIRE_CHROMIUM").is_none() {
        static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        INSTALLED.get_or_init(install_chromium);
    }
    assert!(
        path.exists(),
        "the browser test needs headless Chromium at {}: install Debian's `chromium` package \
         (`apt-get install chromium`; `.ci/run` does when it is missing) or set \
         CAPWIRE_CHROMIUM to a Chromium binary",
        path.display()
    );
    path
}

/// `apt-get install chromium`, directly as root or through `sudo -n`; what it prints goes
/// to the test's output.
fn install_chromium() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut command = if root {
            std::process::Command::new("apt-get")
        } else {
            let mut sudo = std::process::Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    eprintln!("Chromium is missing: installing Debian's chromium package");
    if !apt(&["install", "-y", "-qq", "chromium"]) {
        apt(&["update", "-qq"]);
        apt(&["install", "-y", "-qq", "chromium"]);
    }
}

/// Installs the npm packages of the Node harness and of the example's page.
async fn ensure_npm_packages() {
    tokio::task::spawn_blocking(|| {
        support::ensure_node_modules();
        support::ensure_npm_packages(&browser::default_dir(), &["capnweb"]);
    })
    .await
    .expect("npm ci");
}

/// A listener on a free port of 127.0.0.1, and its address.
async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// Serves `app` on `listener` until the test ends.
fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// Runs the harness on `steps` and returns what each step reported, by label. Fails
/// the test with the harness's output if it fails or outlives [`BROWSER_TIMEOUT`].
async fn run_browser(steps: Vec<Value>) -> std::collections::HashMap<String, Value> {
    use tokio::io::AsyncWriteExt;
    let input = json!({
        "chromium": chromium(),
        "timeoutMs": BROWSER_TIMEOUT.as_millis() as u64 - 10_000,
        "steps": steps,
    });
    let mut child = tokio::process::Command::new("node")
        .arg("browser.mjs")
        .current_dir(support::node_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node: {e}; the browser test needs Node.js 20+"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("write to node");
    drop(stdin);
    let out = tokio::time::timeout(BROWSER_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!("the browser harness did not finish within {BROWSER_TIMEOUT:?} (killed)")
        })
        .expect("wait for node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser harness failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the harness printed no JSON ({e}):\n{stdout}\n{stderr}"));
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            (
                step["label"].as_str().expect("label").to_owned(),
                step.clone(),
            )
        })
        .collect()
}

/// What `selfTest` is asked to do, and what it should then report.
struct SelfTest {
    name: String,
    title: String,
    notes: Vec<String>,
    bytes: u64,
}

impl SelfTest {
    fn new(tag: &str) -> SelfTest {
        let run = std::process::id();
        SelfTest {
            name: format!("Ada {tag} {run}"),
            title: format!("{tag} list {run}"),
            notes: vec![
                format!("milk for {tag}"),
                "“quotes”, \"escapes\" and ünïcödé 🦀".to_owned(),
                "line\nbreak".to_owned(),
                format!("last of {run}"),
            ],
            bytes: 300_000,
        }
    }

    fn step(&self, label: &str, url: String) -> Value {
        json!({
            "label": label,
            "url": url,
            "fn": "selfTest",
            "args": [{ "name": self.name, "title": self.title, "notes": self.notes, "bytes": self.bytes }],
        })
    }

    /// Checks the report of a `selfTest` run over `transport`.
    fn check(&self, step: &Value, transport: &str, rpc: &str) {
        let report = &step["result"];
        let ctx = || format!("{transport} report: {step:#}");
        assert_eq!(step["transport"], transport, "{}", ctx());
        assert_eq!(report["transport"], transport, "{}", ctx());

        // A call, and a call that rejects.
        assert_eq!(
            report["greeting"],
            format!("Hello, {}!", self.name),
            "{}",
            ctx()
        );
        assert_eq!(report["rejected"]["name"], "RangeError", "{}", ctx());

        // The pipelined chain: every list.add answered in order, then the notes and the
        // title of the list the chain made.
        let pipeline = &report["pipeline"];
        let counts: Vec<u64> = (1..=self.notes.len() as u64).collect();
        assert_eq!(pipeline["added"], json!(counts), "{}", ctx());
        assert_eq!(pipeline["notes"], json!(self.notes), "{}", ctx());
        assert_eq!(pipeline["title"], self.title, "{}", ctx());
        let titles: Vec<String> = serde_json::from_value(report["titles"].clone()).expect("titles");
        assert!(titles.contains(&self.title), "{}", ctx());
        let wire: Vec<(String, String)> =
            serde_json::from_value(pipeline["wire"].clone()).expect("wire log");
        if transport == "websocket" {
            // One round trip: every push and pull left before the first answer arrived.
            let first_answer = wire
                .iter()
                .position(|(dir, _)| dir == "recv")
                .unwrap_or_else(|| panic!("no answer on the wire: {}", ctx()));
            let last_call = wire
                .iter()
                .rposition(|(dir, kind)| dir == "send" && (kind == "push" || kind == "pull"))
                .unwrap_or_else(|| panic!("no call on the wire: {}", ctx()));
            assert!(last_call < first_answer, "not one round trip: {}", ctx());
            let pulls = wire.iter().filter(|(_, kind)| kind == "pull").count();
            // One pull per add, one for the notes, one for the title.
            assert_eq!(pulls, self.notes.len() + 2, "{}", ctx());
        } else {
            assert_eq!(
                wire,
                [("post".to_owned(), rpc.to_owned())],
                "the chain should be one request: {}",
                ctx()
            );
        }

        // The callback, over a WebSocket (an HTTP batch cannot be called back).
        if transport == "websocket" {
            let visited: Vec<Value> = self
                .notes
                .iter()
                .enumerate()
                .map(|(i, note)| json!([i, note]))
                .collect();
            assert_eq!(report["callback"]["count"], self.notes.len(), "{}", ctx());
            assert_eq!(report["callback"]["visited"], json!(visited), "{}", ctx());
        } else {
            assert_eq!(report["callback"], Value::Null, "{}", ctx());
        }

        // The streams, read to their end.
        let checksum = (0..self.bytes).fold(0u32, |sum, k| sum.wrapping_add((k % 251) as u32));
        assert_eq!(report["download"]["length"], self.bytes, "{}", ctx());
        assert_eq!(report["download"]["checksum"], checksum, "{}", ctx());
        let text: String = self.notes.iter().map(|n| format!("{n}\n")).collect();
        assert_eq!(report["exported"], text, "{}", ctx());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_calls_pipelines_calls_back_and_streams_in_headless_chromium() {
    chromium();
    ensure_npm_packages().await;
    let assets = browser::Assets::load(&browser::default_dir()).expect("the page's files");
    let notes = Arc::new(browser::Notes::default());
    let (listener, addr) = bind().await;
    serve(
        listener,
        browser::app(assets, notes.clone(), CorsPolicy::same_origin()),
    );
    let page = format!("http://{addr}/");
    let rpc = format!("http://{addr}/rpc");

    let over_ws = SelfTest::new("websocket");
    let over_http = SelfTest::new("batch");
    let no_ws = format!("{page}?ws=ws://{addr}/no-such-endpoint");
    let ui_title = format!("typed in {}", std::process::id());
    let steps = run_browser(vec![
        over_ws.step("websocket", page.clone()),
        // A WebSocket endpoint that refuses the upgrade (404): the page falls back to HTTP.
        over_http.step("batch", no_ws.clone()),
        // The forms, over each transport, on one list.
        json!({ "label": "ui websocket", "url": page, "fn": "ui", "args": [ui_title, "first, typed"] }),
        json!({ "label": "ui batch", "url": no_ws, "fn": "ui", "args": [ui_title, "second, typed"] }),
    ])
    .await;

    let ws = &steps["websocket"];
    over_ws.check(ws, "websocket", &rpc);
    assert_eq!(ws["rpcPosts"], 0, "over a WebSocket, no HTTP batch: {ws:#}");
    assert_eq!(ws["errors"], json!([]), "{ws:#}");

    let http = &steps["batch"];
    over_http.check(http, "http-batch", &rpc);
    // greet, the rejected greet, the chain, titles, the download and the export: one
    // request each.
    assert_eq!(http["rpcPosts"], 6, "{http:#}");
    let errors: Vec<String> = serde_json::from_value(http["errors"].clone()).unwrap();
    assert!(
        errors.iter().all(|e| e.contains("WebSocket")),
        "only the refused WebSocket may log an error: {http:#}"
    );

    // What a person typed shows in the list, over either transport.
    let ui = &steps["ui websocket"];
    assert_eq!(ui["result"]["items"], json!(["first, typed"]), "{ui:#}");
    assert!(
        ui["result"]["status"]
            .as_str()
            .unwrap()
            .contains("WebSocket"),
        "{ui:#}"
    );
    let ui = &steps["ui batch"];
    assert_eq!(
        ui["result"]["items"],
        json!(["first, typed", "second, typed"]),
        "{ui:#}"
    );
    assert!(
        ui["result"]["status"].as_str().unwrap().contains("HTTP"),
        "{ui:#}"
    );

    // The server holds what the pages added.
    assert_eq!(notes.get(&over_ws.title), Some(over_ws.notes.clone()));
    assert_eq!(notes.get(&over_http.title), Some(over_http.notes.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cors_policy_lets_an_allowed_origin_call_and_refuses_another_before_any_call() {
    chromium();
    ensure_npm_packages().await;
    let assets = browser::Assets::load(&browser::default_dir()).expect("the page's files");
    // Three origins: the board under test, and two others serving the same page.
    let (board_listener, board) = bind().await;
    let (allowed_listener, allowed) = bind().await;
    let (refused_listener, refused) = bind().await;
    let notes = Arc::new(browser::Notes::default());
    serve(
        board_listener,
        browser::app(
            assets.clone(),
            notes.clone(),
            CorsPolicy::allow_origins([format!("http://{allowed}")]),
        ),
    );
    for (listener, _) in [(allowed_listener, allowed), (refused_listener, refused)] {
        // Their own boards are not the one under test.
        let app = browser::app(
            assets.clone(),
            Default::default(),
            CorsPolicy::same_origin(),
        );
        serve(listener, app);
    }

    let rpc = format!("http://{board}/rpc");
    let ws = format!("ws://{board}/rpc");
    let run = std::process::id();
    let allowed_title = format!("from the allowed origin {run}");
    let refused_title = format!("from the refused origin {run}");
    let preflighted = json!({ "authorization": "Bearer demo" });
    let tries = |label: &str, page: SocketAddr, title: &str| {
        let url = format!("http://{page}/");
        vec![
            json!({ "label": format!("{label} batch"), "url": url, "fn": "tryBatch",
                    "args": [rpc, title, "a simple batch"] }),
            json!({ "label": format!("{label} preflighted batch"), "url": url, "fn": "tryBatch",
                    "args": [rpc, title, "a preflighted batch", preflighted] }),
            json!({ "label": format!("{label} websocket"), "url": url, "fn": "tryWebSocket",
                    "args": [ws, title, "a WebSocket"] }),
        ]
    };
    let mut steps = tries("allowed", allowed, &allowed_title);
    steps.extend(tries("refused", refused, &refused_title));
    let steps = run_browser(steps).await;

    // The allowed origin's page read every answer: the list grew by one each time.
    for (n, kind) in ["batch", "preflighted batch", "websocket"]
        .iter()
        .enumerate()
    {
        let step = &steps[&format!("allowed {kind}")];
        assert_eq!(
            step["result"],
            json!({ "ok": true, "value": n + 1 }),
            "{step:#}"
        );
    }
    let preflight = &steps["allowed preflighted batch"]["responses"][0];
    assert_eq!(
        (&preflight["method"], &preflight["status"]),
        (&json!("OPTIONS"), &json!(204)),
        "{preflight:#}"
    );

    // The refused origin's page got no answer, over HTTP or WebSocket...
    for kind in ["batch", "preflighted batch", "websocket"] {
        let step = &steps[&format!("refused {kind}")];
        assert_eq!(step["result"]["ok"], false, "{step:#}");
    }
    // The upgrade was refused by the policy (403), not lost some other way.
    let refused_ws = &steps["refused websocket"];
    assert!(
        refused_ws["errors"].to_string().contains("403"),
        "{refused_ws:#}"
    );
    let preflight = &steps["refused preflighted batch"]["responses"][0];
    assert_eq!(
        (&preflight["method"], &preflight["status"]),
        (&json!("OPTIONS"), &json!(403)),
        "{preflight:#}"
    );
    // ... and none of its calls ran: the board holds the allowed page's notes only.
    assert_eq!(
        notes.get(&allowed_title),
        Some(vec![
            "a simple batch".to_owned(),
            "a preflighted batch".to_owned(),
            "a WebSocket".to_owned()
        ])
    );
    assert_eq!(
        notes.get(&refused_title),
        None,
        "a refused origin's call ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_script_type_checks_with_the_pinned_tsc() {
    ensure_npm_packages().await;
    let tsc = support::node_dir().join("node_modules/typescript/bin/tsc");
    let config = browser::default_dir().join("tsconfig.json");
    let run = tokio::process::Command::new("node")
        .arg(&tsc)
        .arg("-p")
        .arg(&config)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("tsc did not finish within 120 s")
        .unwrap_or_else(|e| panic!("could not run node {}: {e}", tsc.display()));
    assert!(
        out.status.success(),
        "tsc -p {} found errors:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
