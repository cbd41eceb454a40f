//! Web clients: the CORS and Origin policy (batches, WebSocket upgrades and preflights,
//! on the conformance server, a mounted route and the host), and the session context (a
//! login cookie picking the user).

mod support;

use capwire_examples::conformance;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP answer: status, headers (names lowercased; repeated ones joined with `, `),
/// body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends one request (`headers` as `name: value` lines) and reads the answer's head, and
/// its body up to `content-length` (a `101` has none).
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before the answer's head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let mut headers: HashMap<String, String> = HashMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers
            .entry(name.trim().to_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value.trim())
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    let mut rest = buf[head_end + 4..].to_vec();
    let length: usize = headers
        .get("content-length")
        .map_or(0, |l| l.parse().unwrap());
    while status != 101 && rest.len() < length {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed in the answer's body");
        rest.extend_from_slice(&chunk[..n]);
    }
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&rest).to_string(),
    }
}

const UPGRADE: [&str; 4] = [
    "connection: upgrade",
    "upgrade: websocket",
    "sec-websocket-version: 13",
    "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
];

async fn upgrade(addr: SocketAddr, path: &str, origin: Option<&str>) -> Answer {
    let origin = origin.map(|o| format!("origin: {o}"));
    let mut headers: Vec<&str> = UPGRADE.to_vec();
    headers.extend(origin.as_deref());
    send(addr, "GET", path, &headers, "").await
}

/// An HTTP batch that increments the Durable Object counter `name` and answers its value.
fn increment_batch(name: &str) -> String {
    format!(
        "[\"push\",[\"pipeline\",0,[\"durableCounter\"],[\"{name}\"]]]\n\
         [\"push\",[\"pipeline\",1,[\"increment\"],[]]]\n[\"pull\",2]"
    )
}

/// An HTTP batch that reads the Durable Object counter `name`.
fn read_batch(name: &str) -> String {
    format!(
        "[\"push\",[\"pipeline\",0,[\"durableCounter\"],[\"{name}\"]]]\n\
         [\"push\",[\"pipeline\",1,[\"value\"]]]\n[\"pull\",2]"
    )
}

async fn batch(addr: SocketAddr, origin: Option<&str>, body: &str) -> Answer {
    let origin = origin.map(|o| format!("origin: {o}"));
    let headers: Vec<&str> = origin.as_deref().into_iter().collect();
    send(addr, "POST", "/", &headers, body).await
}

async fn conformance_server(origins: &[&str]) -> SocketAddr {
    let (server, addr) = conformance::bind("127.0.0.1:0").await.unwrap();
    let policy = conformance::cors_policy(origins.iter().map(|o| o.to_string()).collect());
    tokio::spawn(conformance::run(server.cors(policy)));
    addr
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{:?}",
        std::process::id(),
        std::time::Instant::now()
    )
}

#[tokio::test]
async fn without_allowed_origins_any_page_may_call_and_read_the_answer() {
    let addr = conformance_server(&[]).await;
    let name = unique("open");
    let answer = batch(
        addr,
        Some("http://elsewhere.example"),
        &increment_batch(&name),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, "[\"resolve\",2,1]");
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(answer.header("access-control-allow-credentials"), None);
    let preflight = send(
        addr,
        "OPTIONS",
        "/",
        &[
            "origin: http://elsewhere.example",
            "access-control-request-method: POST",
            "access-control-request-headers: authorization, content-type",
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 204, "{preflight:?}");
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(
        preflight
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST")),
        "{preflight:?}"
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert!(preflight.header("access-control-max-age").is_some());
    let ws = upgrade(addr, "/", Some("http://elsewhere.example")).await;
    assert_eq!(ws.status, 101, "{ws:?}");
    // Every batch answer carries it, with or without Origin.
    let plain = batch(addr, None, &read_batch(&name)).await;
    assert_eq!(plain.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn the_conformance_servers_flags_name_its_origins() {
    let args = |list: &[&str]| conformance::Args::parse(list.iter().map(|a| a.to_string()));
    let parsed = args(&[
        "--listen",
        "127.0.0.1:0",
        "--allowed-origin",
        "http://a.example",
        "--allowed-origin",
        "http://b.example:5173",
    ])
    .unwrap();
    assert_eq!(parsed.listen.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(
        parsed.allowed_origins,
        ["http://a.example", "http://b.example:5173"]
    );
    assert!(!parsed.typescript);
    assert!(args(&["--typescript"]).unwrap().typescript);
    assert!(
        args(&["--allowed-origin"])
            .unwrap_err()
            .contains("needs a value")
    );
    assert!(args(&["--bogus"]).unwrap_err().contains("unknown argument"));
}

#[tokio::test]
async fn an_unlisted_origin_is_refused_before_any_call_runs() {
    let allowed = "http://app.example:5173";
    let addr = conformance_server(&[allowed]).await;
    let name = unique("guarded");
    // The refused batch would have incremented the counter: it must not have.
    let refused = batch(addr, Some("http://evil.example"), &increment_batch(&name)).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("evil.example"), "{refused:?}");
    assert_eq!(refused.header("access-control-allow-origin"), None);
    let value = batch(addr, None, &read_batch(&name)).await;
    assert_eq!(
        value.body, "[\"resolve\",2,0]",
        "a refused batch ran its calls"
    );
    // The listed origin's batch runs, and its answer names that origin only.
    let ok = batch(addr, Some(allowed), &increment_batch(&name)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body, "[\"resolve\",2,1]");
    assert_eq!(ok.header("access-control-allow-origin"), Some(allowed));
    assert!(
        ok.header("vary").is_some_and(|v| v.contains("Origin")),
        "{ok:?}"
    );
    // A request without Origin (not from a browser) is always allowed.
    let no_origin = batch(addr, None, &increment_batch(&name)).await;
    assert_eq!(no_origin.body, "[\"resolve\",2,2]");
    assert_eq!(no_origin.header("access-control-allow-origin"), None);
    // A list names exactly who may call: the server's own origin is not on it.
    let own = format!("http://{addr}");
    assert_eq!(
        batch(addr, Some(&own), &increment_batch(&name))
            .await
            .status,
        403
    );
    // A GET without an upgrade is still 405, whatever its origin.
    let get = send(addr, "GET", "/", &["origin: http://evil.example"], "").await;
    assert_eq!(get.status, 405, "{get:?}");
    // WebSocket upgrades: refused for an unlisted origin, accepted for the listed one
    // and without Origin.
    assert_eq!(
        upgrade(addr, "/", Some("http://evil.example")).await.status,
        403
    );
    assert_eq!(upgrade(addr, "/", Some("null")).await.status, 403);
    assert_eq!(upgrade(addr, "/", Some(allowed)).await.status, 101);
    assert_eq!(upgrade(addr, "/", None).await.status, 101);
    // Preflights: 403 for an unlisted origin and for `null`, 204 for the listed one.
    for (origin, status) in [("http://evil.example", 403), ("null", 403), (allowed, 204)] {
        let preflight = send(
            addr,
            "OPTIONS",
            "/",
            &[
                &format!("origin: {origin}"),
                "access-control-request-method: POST",
            ],
            "",
        )
        .await;
        assert_eq!(preflight.status, status, "{origin}: {preflight:?}");
    }
}

#[tokio::test]
async fn credentials_are_allowed_only_when_the_policy_says_so() {
    let app = axum::Router::new().route(
        "/",
        capwire::RpcRoute::new(|| conformance::TestTarget)
            .cors(
                capwire::CorsPolicy::allow_origins(["https://app.example"]).allow_credentials(true),
            )
            .build(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let square = "[\"push\",[\"pipeline\",0,[\"square\"],[7]]]\n[\"pull\",1]";
    let ok = batch(addr, Some("https://app.example"), square).await;
    assert_eq!(ok.body, "[\"resolve\",1,49]");
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        batch(addr, Some("https://evil.example"), square)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_host_worker_takes_its_allowed_origins_from_the_config() {
    let serving = support::ping_host(
        "[[worker]]\nname = \"guarded\"\nmain = \"Ping\"\nlisten = \"127.0.0.1:0\"\n\
             allowed_origins = [\"https://app.example\"]\n\
             [[worker]]\nname = \"open\"\nmain = \"Ping\"\nlisten = \"127.0.0.1:0\"",
    )
    .await;
    let (guarded, open) = (
        serving.addr("guarded").unwrap(),
        serving.addr("open").unwrap(),
    );
    let ping = "[\"push\",[\"pipeline\",0,[\"ping\"],[]]]\n[\"pull\",1]";
    assert_eq!(
        upgrade(guarded, "/", Some("https://evil.example"))
            .await
            .status,
        403
    );
    assert_eq!(
        batch(guarded, Some("https://evil.example"), ping)
            .await
            .status,
        403
    );
    let ok = batch(guarded, Some("https://app.example"), ping).await;
    assert_eq!(ok.body, "[\"resolve\",1,\"pong\"]");
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    // Without allowed_origins, the host's default: any origin, `*`.
    assert_eq!(
        upgrade(open, "/", Some("https://evil.example"))
            .await
            .status,
        101
    );
    let any = batch(open, Some("https://evil.example"), ping).await;
    assert_eq!(any.header("access-control-allow-origin"), Some("*"));
    serving.stop().await.unwrap();
}

/// Serves the accounts example, returns its address.
async fn accounts_app() -> SocketAddr {
    let app = capwire_examples::accounts::app(Arc::new(Default::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn log_in(addr: SocketAddr, user: &str) -> String {
    let answer = send(addr, "POST", "/login", &[], user).await;
    let cookie = answer.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_session_factory_makes_the_main_object_for_the_logged_in_user() {
    let addr = accounts_app().await;
    let alice = log_in(addr, "alice").await;
    let bob = log_in(addr, "bob").await;
    let connect = |cookie: String| async move {
        let mut headers = capwire::http::HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        capwire::connect_with_headers(
            &format!("ws://{addr}/rpc"),
            headers,
            None,
            Default::default(),
        )
        .await
        .unwrap()
    };
    let alice_ws = connect(alice.clone()).await.main();
    let bob_ws = connect(bob.clone()).await.main();
    assert_eq!(alice_ws.call("whoami", ()).await.unwrap(), "alice".into());
    assert_eq!(bob_ws.call("whoami", ()).await.unwrap(), "bob".into());
    let id = alice_ws.call("addNote", ("alice's secret",)).await.unwrap();
    let id = id.as_i64().unwrap();
    assert_eq!(
        alice_ws.call("note", (id,)).await.unwrap(),
        "alice's secret".into()
    );
    // Bob's session reaches only Bob's notes, whatever ID he names.
    let stolen = bob_ws.call("note", (id,)).await.unwrap_err();
    assert!(stolen.message().contains("no note"), "{stolen:?}");
    assert_eq!(
        bob_ws.call("notes", ()).await.unwrap(),
        capwire::Value::from(Vec::<String>::new())
    );
    // An HTTP batch picks the user from the same cookie.
    let notes = "[\"push\",[\"pipeline\",0,[\"notes\"],[]]]\n[\"pull\",1]";
    let cookie = format!("cookie: {alice}");
    let answer = send(addr, "POST", "/rpc", &[&cookie], notes).await;
    assert_eq!(answer.body, "[\"resolve\",1,[[\"alice's secret\"]]]");
    let cookie = format!("cookie: {bob}");
    let answer = send(addr, "POST", "/rpc", &[&cookie], notes).await;
    assert_eq!(answer.body, "[\"resolve\",1,[[]]]");
    // Without a login, no session at all.
    assert_eq!(send(addr, "POST", "/rpc", &[], notes).await.status, 401);
    assert_eq!(upgrade(addr, "/rpc", None).await.status, 401);
}

#[tokio::test]
async fn a_factory_that_reads_the_request_refuses_foreign_pages_by_default() {
    let addr = accounts_app().await;
    let alice = log_in(addr, "alice").await;
    let cookie = format!("cookie: {alice}");
    let whoami = "[\"push\",[\"pipeline\",0,[\"whoami\"],[]]]\n[\"pull\",1]";
    // A foreign page's request carries Alice's cookie: refused.
    let foreign = send(
        addr,
        "POST",
        "/rpc",
        &[&cookie, "origin: https://evil.example"],
        whoami,
    )
    .await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
    let mut ws_headers: Vec<&str> = UPGRADE.to_vec();
    ws_headers.extend([cookie.as_str(), "origin: https://evil.example"]);
    assert_eq!(send(addr, "GET", "/rpc", &ws_headers, "").await.status, 403);
    // The app's own page (its origin names the server) is served.
    let own = format!("origin: http://{addr}");
    let same = send(addr, "POST", "/rpc", &[&cookie, &own], whoami).await;
    assert_eq!(same.body, "[\"resolve\",1,\"alice\"]");
    // A preflight carries no cookie: the login middleware lets it through to the policy,
    // which refuses the foreign page and admits the app's own.
    let foreign_preflight = send(
        addr,
        "OPTIONS",
        "/rpc",
        &[
            "origin: https://evil.example",
            "access-control-request-method: POST",
        ],
        "",
    )
    .await;
    assert_eq!(foreign_preflight.status, 403, "{foreign_preflight:?}");
    let own_preflight = send(
        addr,
        "OPTIONS",
        "/rpc",
        &[&own, "access-control-request-method: POST"],
        "",
    )
    .await;
    assert_eq!(own_preflight.status, 204, "{own_preflight:?}");
}

#[tokio::test]
async fn the_context_carries_method_uri_headers_and_peer_address() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(move |ctx: &capwire::SessionContext| {
        record.lock().unwrap().push((
            ctx.method().clone(),
            ctx.uri().to_string(),
            ctx.headers().get("x-tenant").cloned(),
            ctx.peer_addr(),
            ctx.is_websocket(),
        ));
        conformance::TestTarget
    }));
    let square = "[\"push\",[\"pipeline\",0,[\"square\"],[3]]]\n[\"pull\",1]";
    let answer = send(addr, "POST", "/?t=1", &["x-tenant: blue"], square).await;
    assert_eq!(answer.body, "[\"resolve\",1,9]");
    let mut headers = capwire::http::HeaderMap::new();
    headers.insert("x-tenant", "green".parse().unwrap());
    let session =
        capwire::connect_with_headers(&format!("ws://{addr}/"), headers, None, Default::default())
            .await
            .unwrap();
    assert_eq!(
        session.main().call("square", (4,)).await.unwrap(),
        16.into()
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, capwire::http::Method::POST);
    assert_eq!(seen[0].1, "/?t=1");
    assert_eq!(seen[0].2.as_ref().unwrap(), "blue");
    assert_eq!(seen[0].3.unwrap().ip(), std::net::Ipv4Addr::LOCALHOST);
    assert!(!seen[0].4);
    assert_eq!(seen[1].0, capwire::http::Method::GET);
    assert_eq!(seen[1].2.as_ref().unwrap(), "green");
    assert!(seen[1].3.is_some());
    assert!(seen[1].4);
}
