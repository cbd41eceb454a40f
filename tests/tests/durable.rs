//! Durable Objects: one instance per ID, calls one at a time (the input gate), durable
//! storage across restarts and evictions, IDs checked, configuration errors named.

mod support;

use capwire::TypedStub;
use capwire::durable::{DurableObject, State};
use capwire::host::{Ctx, Entrypoint, Env, Host};
use capwire::{RpcError, Stub, entrypoint, rpc_target};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts constructions, and calls of `hold` started, per host (a resource of the host).
#[derive(Clone, Default)]
struct Made(Arc<AtomicUsize>, Arc<AtomicUsize>);

pub struct Counter {
    state: State,
    made: Made,
}

impl DurableObject for Counter {
    fn new(state: State, env: Env) -> Self {
        let made = env.resource::<Made>("made").unwrap_or_default();
        made.0.fetch_add(1, Ordering::SeqCst);
        Counter { state, made }
    }
}

#[rpc_target]
impl Counter {
    /// Read, then write: nothing between them is an await, so no other call runs there.
    pub fn increment(&self, by: Option<i64>) -> Result<i64, RpcError> {
        let storage = self.state.storage();
        let n = storage.get::<i64>("n")?.unwrap_or(0);
        std::thread::yield_now();
        storage.put("n", &(n + by.unwrap_or(1)))?;
        Ok(n + by.unwrap_or(1))
    }

    /// Keeps a call running (waiting outside the object) for `ms` milliseconds.
    pub async fn hold(&self, ms: u64) {
        self.made.1.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[rpc(getter)]
    pub fn value(&self) -> Result<i64, RpcError> {
        Ok(self.state.storage().get::<i64>("n")?.unwrap_or(0))
    }

    #[rpc(getter)]
    pub fn id(&self) -> String {
        self.state.id().to_string()
    }
}

/// Two objects that call each other: A→B→A.
pub struct Pinger {
    state: State,
    env: Env,
}

impl DurableObject for Pinger {
    fn new(state: State, env: Env) -> Self {
        Pinger { state, env }
    }
}

#[rpc_target]
impl Pinger {
    /// Calls `other`, which calls this object back before answering.
    pub async fn ping_via(&self, other: String) -> Result<String, RpcError> {
        let ns = self.env.durable_object::<Pinger>("PINGER")?;
        let me = self.state.id().to_string();
        ns.get_by_name(&other).pong_back(me).await
    }

    /// Calls the object `id` back.
    pub async fn pong_back(&self, id: String) -> Result<String, RpcError> {
        let ns = self.env.durable_object::<Pinger>("PINGER")?;
        let caller = ns.get(ns.id_from_string(&id)?);
        Ok(format!("pong after {}", caller.hello().await?))
    }

    pub fn hello(&self) -> String {
        "hello".into()
    }
}

/// An object with an alarm: `arm(ms)` sets it; `alarm()` counts its runs, failing the
/// first `fail_first` of them.
pub struct Alarmed {
    state: State,
}

impl DurableObject for Alarmed {
    fn new(state: State, _env: Env) -> Self {
        Alarmed { state }
    }
}

#[rpc_target]
impl Alarmed {
    pub fn arm(&self, ms: u64, fail_first: Option<u32>) -> Result<(), RpcError> {
        let storage = self.state.storage();
        storage.put("fail_first", &fail_first.unwrap_or(0))?;
        storage.set_alarm(std::time::SystemTime::now() + Duration::from_millis(ms))
    }

    pub fn alarm(&self) -> Result<(), RpcError> {
        let storage = self.state.storage();
        let attempts = storage.get::<u32>("attempts")?.unwrap_or(0) + 1;
        storage.put("attempts", &attempts)?;
        if attempts <= storage.get::<u32>("fail_first")?.unwrap_or(0) {
            return Err(RpcError::error("not yet"));
        }
        let fired = storage.get::<u32>("fired")?.unwrap_or(0) + 1;
        storage.put("fired", &fired)
    }

    /// (runs, attempts, whether an alarm is still set)
    pub fn report(&self) -> Result<(u32, u32, bool), RpcError> {
        let storage = self.state.storage();
        Ok((
            storage.get::<u32>("fired")?.unwrap_or(0),
            storage.get::<u32>("attempts")?.unwrap_or(0),
            storage.get_alarm()?.is_some(),
        ))
    }
}

/// An object with a `fetch` handler: it counts its visits.
pub struct Page {
    state: State,
}

impl DurableObject for Page {
    fn new(state: State, _env: Env) -> Self {
        Page { state }
    }
}

#[rpc_target]
impl Page {
    pub fn fetch(&self, request: capwire::Request) -> Result<capwire::Response, RpcError> {
        let storage = self.state.storage();
        let visits = storage.get::<u64>("visits")?.unwrap_or(0) + 1;
        storage.put("visits", &visits)?;
        let body = format!("visit {visits} of {} {}", request.method, request.url);
        Ok(capwire::Response::new(capwire::http::StatusCode::OK)
            .with_body(capwire::ReadableStream::from_bytes(body.into_bytes())))
    }
}

pub struct Api {
    env: Env,
}

impl Entrypoint for Api {
    fn new(env: Env, _ctx: Ctx) -> Self {
        Api { env }
    }
}

#[entrypoint]
impl Api {
    /// A page by name, handed out by reference.
    pub fn page(&self, name: String) -> Result<Stub<Page>, RpcError> {
        Ok(self.env.durable_object::<Page>("PAGE")?.get_by_name(&name))
    }

    /// A counter by name, handed out by reference.
    pub fn counter(&self, name: String) -> Result<Stub<Counter>, RpcError> {
        Ok(self
            .env
            .durable_object::<Counter>("COUNTER")?
            .get_by_name(&name))
    }
}

const CONFIG: &str = r#"
    [[worker]]
    name = "app"
    main = "Api"
    durable_objects = [
        { name = "COUNTER", class_name = "Counter" },
        { name = "PINGER", class_name = "Pinger" },
        { name = "ALARMED", class_name = "Alarmed" },
        { name = "PAGE", class_name = "Page" },
    ]

    [[worker]]
    name = "other"
    main = "Api"
    durable_objects = [{ name = "COUNTER", class_name = "Counter", script_name = "app" }]
"#;

/// A fresh data directory, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new(test: &str) -> DataDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "capwire-durable-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host(dir: &DataDir, made: &Made, idle: Duration) -> Host {
    builder(dir, made, idle)
        .config_str(CONFIG, "workers.toml")
        .expect("the configuration is valid")
}

fn builder(dir: &DataDir, made: &Made, idle: Duration) -> capwire::host::HostBuilder {
    Host::builder()
        .entrypoint::<Api>("Api")
        .durable_object::<Counter>("Counter")
        .durable_object::<Pinger>("Pinger")
        .durable_object::<Alarmed>("Alarmed")
        .durable_object::<Page>("Page")
        .resource("made", made.clone())
        .data_dir(&dir.0)
        .durable_idle_timeout(idle)
}

/// Open file descriptors of this process on files under `dir` (the other tests of this
/// binary run at the same time and open files of their own).
fn open_files(dir: &DataDir) -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir.0))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_named_at_will_hold_no_more_than_durable_max_live() {
    let dir = DataDir::new("max-live");
    let made = Made::default();
    let host = builder(&dir, &made, Duration::from_secs(60))
        .durable_max_live(8)
        .config_str(CONFIG, "workers.toml")
        .unwrap();
    let ns = host.durable_object::<Counter>("app", "COUNTER").unwrap();
    let files = open_files(&dir);
    // A caller naming 200 objects: idle ones make room, and descriptors stay bounded.
    for i in 0..200 {
        assert_eq!(
            ns.get_by_name(&format!("n{i}"))
                .increment(None)
                .await
                .unwrap(),
            1
        );
        assert!(host.live_durable_objects() <= 8);
    }
    let open = open_files(&dir);
    assert!(open > 0, "the live objects' files are seen open");
    let grown = open.saturating_sub(files);
    assert!(
        grown <= 8 * 3 + 8,
        "{grown} more open files for 8 live objects"
    );
    // With every live object running a call, a new one is refused, naming the limit.
    let holds: Vec<_> = (0..8)
        .map(|i| {
            let stub = ns.get_by_name(&format!("busy{i}"));
            tokio::spawn(async move { stub.hold(3000).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while made.1.load(Ordering::SeqCst) < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the holds never started"
        );
        tokio::task::yield_now().await;
    }
    let e = ns
        .get_by_name("one-too-many")
        .increment(None)
        .await
        .unwrap_err();
    assert!(e.message().contains("limit durable_max_live"), "{e}");
    for h in holds {
        h.await.unwrap().unwrap();
    }
    assert_eq!(
        ns.get_by_name("one-too-many")
            .increment(None)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_first_calls_make_one_instance() {
    let dir = DataDir::new("one");
    let made = Made::default();
    let host = host(&dir, &made, Duration::from_secs(60));
    let ns = host.durable_object::<Counter>("app", "COUNTER").unwrap();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let stub = ns.get_by_name("alice");
            tokio::spawn(async move { stub.increment(None).await })
        })
        .collect();
    let mut results = Vec::new();
    for c in calls {
        results.push(c.await.unwrap().unwrap());
    }
    results.sort();
    assert_eq!(results, (1..=50).collect::<Vec<_>>());
    assert_eq!(made.0.load(Ordering::SeqCst), 1, "one instance for one ID");
    assert_eq!(host.live_durable_objects(), 1);
    // Another name is another object.
    assert_eq!(ns.get_by_name("bob").increment(None).await.unwrap(), 1);
    assert_eq!(made.0.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_read_then_write_increments_lose_nothing() {
    let dir = DataDir::new("race");
    let made = Made::default();
    let host = host(&dir, &made, Duration::from_secs(60));
    // Through several callers: the worker's own binding, another worker's binding to the
    // same class, and stubs handed out by an entrypoint.
    let here = host.durable_object::<Counter>("app", "COUNTER").unwrap();
    let there = host.durable_object::<Counter>("other", "COUNTER").unwrap();
    let api = host.service::<Stub<Api>>("app", None).unwrap();
    let mut calls = Vec::new();
    for k in 0..200 {
        let stub = match k % 3 {
            0 => here.get_by_name("shared"),
            1 => there.get_by_name("shared"),
            _ => api.counter("shared").await.unwrap(),
        };
        calls.push(tokio::spawn(async move { stub.increment(None).await }));
    }
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(here.get_by_name("shared").value().await.unwrap(), 200);
    assert_eq!(made.0.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_calls_another_that_calls_it_back_does_not_deadlock() {
    let dir = DataDir::new("reentry");
    let host = host(&dir, &Made::default(), Duration::from_secs(60));
    let ns = host.durable_object::<Pinger>("app", "PINGER").unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ns.get_by_name("a").ping_via("b"))
        .await
        .expect("A→B→A completes")
        .unwrap();
    assert_eq!(answer, "pong after hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_survives_a_host_restart() {
    let dir = DataDir::new("restart");
    let made = Made::default();
    {
        let host = host(&dir, &made, Duration::from_secs(60));
        let ns = host.durable_object::<Counter>("app", "COUNTER").unwrap();
        for _ in 0..3 {
            ns.get_by_name("alice").increment(None).await.unwrap();
        }
    }
    let host = host(&dir, &made, Duration::from_secs(60));
    let ns = host.durable_object::<Counter>("app", "COUNTER").unwrap();
    assert_eq!(ns.get_by_name("alice").increment(None).await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_is_evicted_and_made_again_from_storage() {
    let dir = DataDir::new("evict");
    let made = Made::default();
    let host = host(&dir, &made, Duration::from_millis(50));
    let ns = host.durable_object::<Counter>("app", "COUNTER").unwrap();
    // A stub held across the eviction still reaches the object.
    let alice = ns.get_by_name("alice");
    assert_eq!(alice.increment(Some(5)).await.unwrap(), 5);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while host.live_durable_objects() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle instance was never evicted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(alice.increment(Some(1)).await.unwrap(), 6);
    assert_eq!(
        made.0.load(Ordering::SeqCst),
        2,
        "made again after the eviction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_checked_against_their_namespace() {
    let dir = DataDir::new("ids");
    let host = host(&dir, &Made::default(), Duration::from_secs(60));
    let counters = host.durable_object::<Counter>("app", "COUNTER").unwrap();
    let pingers = host.durable_object::<Pinger>("app", "PINGER").unwrap();
    let id = counters.id_from_name("alice");
    assert_eq!(counters.id_from_string(&id.to_string()).unwrap(), id);
    // The same name in the same namespace, from another worker's binding: the same ID.
    let other = host.durable_object::<Counter>("other", "COUNTER").unwrap();
    assert_eq!(other.id_from_name("alice"), id);
    assert_eq!(
        counters.get(id).id().await.unwrap(),
        id.to_string(),
        "the object knows its ID"
    );
    for bad in ["", "xyz", &"0".repeat(64), &id.to_string().to_uppercase()] {
        let e = counters.id_from_string(bad).unwrap_err();
        assert!(e.message().contains("Invalid Durable Object ID"), "{e}");
    }
    // An ID of another namespace is refused, not a new object.
    let foreign = pingers.id_from_name("alice").to_string();
    let e = counters.id_from_string(&foreign).unwrap_err();
    assert!(e.message().contains("not an ID of this namespace"), "{e}");
    let unique = counters.new_unique_id().unwrap();
    assert_ne!(unique, counters.new_unique_id().unwrap());
    assert_eq!(
        counters.id_from_string(&unique.to_string()).unwrap(),
        unique
    );
}

/// Waits until `object`'s report is `expected` (bounded).
async fn report_becomes(object: &Stub<Alarmed>, expected: (u32, u32, bool), within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let report = object.report().await.unwrap();
        if report == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "report {report:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_runs_at_its_time_once() {
    let dir = DataDir::new("alarm");
    let host = host(&dir, &Made::default(), Duration::from_secs(60));
    let ns = host.durable_object::<Alarmed>("app", "ALARMED").unwrap();
    let object = ns.get_by_name("a");
    object.arm(100, None).await.unwrap();
    assert_eq!(object.report().await.unwrap(), (0, 0, true));
    report_becomes(&object, (1, 1, false), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_alarm_is_retried() {
    let dir = DataDir::new("retry");
    let host = host(&dir, &Made::default(), Duration::from_secs(60));
    let ns = host.durable_object::<Alarmed>("app", "ALARMED").unwrap();
    let object = ns.get_by_name("a");
    object.arm(10, Some(1)).await.unwrap();
    // The first run fails; the retry (a second later) succeeds.
    report_becomes(&object, (0, 1, true), Duration::from_secs(10)).await;
    report_becomes(&object, (1, 2, false), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_set_before_a_restart_runs_after_it() {
    let dir = DataDir::new("alarm-restart");
    {
        let host = host(&dir, &Made::default(), Duration::from_millis(20));
        let ns = host.durable_object::<Alarmed>("app", "ALARMED").unwrap();
        ns.get_by_name("a").arm(500, None).await.unwrap();
        // The first host goes away before the alarm's time, its instance evicted first.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while host.live_durable_objects() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "never evicted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let host = host(&dir, &Made::default(), Duration::from_secs(60));
    let ns = host.durable_object::<Alarmed>("app", "ALARMED").unwrap();
    report_becomes(&ns.get_by_name("a"), (1, 1, false), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reaches_a_durable_object_through_its_stub_here_and_over_a_session() {
    let dir = DataDir::new("fetch");
    let host = host(&dir, &Made::default(), Duration::from_secs(60));
    let pages = host.durable_object::<Page>("app", "PAGE").unwrap();
    let request = || capwire::Request::new(capwire::http::Method::GET, "https://example.com/a");
    let response = pages.get_by_name("home").fetch(request()).await.unwrap();
    assert_eq!(response.status, 200);
    let body = response.body.expect("a body").read_all().await.unwrap();
    assert_eq!(&body[..], b"visit 1 of GET https://example.com/a");
    // Over an RPC session, through a stub an entrypoint hands out.
    let (a, b) = capwire::transport::memory::channel(Duration::ZERO);
    let api = host.service::<Stub<Api>>("app", None).unwrap();
    let _server = capwire::Session::start(b, Some(TypedStub::into_raw(api)), Default::default());
    let client = capwire::Session::start(a, None, Default::default());
    let remote: Stub<Api> = TypedStub::from_raw(client.main());
    let response = remote.page("home").fetch(request()).await.unwrap();
    let body = response.body.expect("a body").read_all().await.unwrap();
    assert_eq!(&body[..], b"visit 2 of GET https://example.com/a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_host_reaches_the_objects_through_the_owner_with_the_host_secret() {
    let dir = DataDir::new("remote");
    let made = Made::default();
    let owner = builder(&dir, &made, Duration::from_secs(60))
        .host_secret("s3cret")
        .config_str(
            r#"
            [[worker]]
            name = "app"
            main = "Api"
            listen = "127.0.0.1:0"
            durable_objects = [{ name = "COUNTER", class_name = "Counter" }]
            "#,
            "owner.toml",
        )
        .unwrap();
    let serving = owner.start().await.unwrap();
    let addr = serving.addr("app").unwrap();
    let elsewhere = |secret: &str| {
        let other_dir = DataDir::new("remote-edge");
        let host = builder(&other_dir, &Made::default(), Duration::from_secs(60))
            .host_secret(secret)
            .config_str(
                &format!(
                    r#"
                    [[worker]]
                    name = "app"
                    url = "ws://{addr}"

                    [[worker]]
                    name = "edge"
                    main = "Api"
                    durable_objects = [{{ name = "COUNTER", class_name = "Counter", script_name = "app" }}]
                    "#
                ),
                "edge.toml",
            )
            .unwrap();
        (host, other_dir)
    };
    let (edge, _edge_dir) = elsewhere("s3cret");
    let counters = edge.durable_object::<Counter>("edge", "COUNTER").unwrap();
    let here = owner.durable_object::<Counter>("app", "COUNTER").unwrap();
    assert_eq!(counters.id_from_name("alice"), here.id_from_name("alice"));
    for n in 1..=3 {
        assert_eq!(
            counters.get_by_name("alice").increment(None).await.unwrap(),
            n
        );
    }
    // Through the edge worker's own method, and seen from the owner: the same object.
    let api = edge.service::<Stub<Api>>("edge", None).unwrap();
    assert_eq!(api.counter("alice").increment(None).await.unwrap(), 4);
    assert_eq!(here.get_by_name("alice").value().await.unwrap(), 4);
    assert_eq!(
        made.0.load(Ordering::SeqCst),
        1,
        "one instance, in the owner"
    );
    // A host with another secret, or a client with none, is refused.
    let (stranger, _stranger_dir) = elsewhere("guess");
    let e = stranger
        .durable_object::<Counter>("edge", "COUNTER")
        .unwrap()
        .get_by_name("alice")
        .increment(None)
        .await
        .unwrap_err();
    assert!(e.message().contains("401"), "{e}");
    let raw =
        tokio_tungstenite::connect_async(format!("ws://{addr}/__capwire/durable/Counter")).await;
    assert!(raw.is_err(), "a client without the secret got a session");
}

#[test]
fn configuration_errors_name_the_file_and_key() {
    let bad = r#"
        [[worker]]
        name = "app"
        main = "Api"
        durable_objects = [
            { name = "COUNTER", class_name = "Nope" },
            { name = "COUNTER", class_name = "Counter", script_name = "ghost" },
            { name = "P", class_name = "Pinger", script_name = "plain" },
        ]

        [[worker]]
        name = "remote"
        url = "ws://127.0.0.1:1"

        [[worker]]
        name = "plain"
        main = "Api"
    "#;
    let errors = Host::builder()
        .entrypoint::<Api>("Api")
        .durable_object::<Counter>("Counter")
        .durable_object::<Pinger>("Pinger")
        .config_str(bad, "workers.toml")
        .err()
        .expect("the configuration is refused")
        .to_string();
    for expected in [
        "workers.toml: worker[0].durable_objects[0].class_name: no Durable Object class \"Nope\"",
        "workers.toml: worker[0].durable_objects[1].name: the name \"COUNTER\" is bound twice",
        "workers.toml: worker[0].durable_objects[1].script_name: no worker is named \"ghost\"",
        "workers.toml: worker[0].durable_objects[2].script_name: worker \"plain\" defines no Durable Object class \"Pinger\"",
    ] {
        assert!(
            errors.contains(expected),
            "missing {expected:?} in:\n{errors}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_increments_from_four_websocket_sessions_lose_nothing() {
    let addr = support::start_conformance_server().await;
    let name = format!("sessions-{}", std::process::id());
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let api: capwire::RpcStub = capwire::connect(&format!("ws://{addr}/")).await.unwrap();
        sessions.push(api);
    }
    let mut calls = Vec::new();
    for api in &sessions {
        for _ in 0..50 {
            let counter = api.call("durableCounter", (name.clone(),));
            calls.push(tokio::spawn(
                async move { counter.call("increment", ()).await },
            ));
        }
    }
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let value = sessions[0]
        .call("durableCounter", (name,))
        .get("value")
        .await
        .unwrap();
    assert_eq!(value.as_f64(), Some(200.0));
}

/// A storage provider of the test's own: in memory, one store per object, counting opens.
#[derive(Clone, Default)]
struct Memory {
    stores: Arc<std::sync::Mutex<std::collections::HashMap<String, capwire::durable::Storage>>>,
    opens: Arc<AtomicUsize>,
}

impl capwire::durable::StorageProvider for Memory {
    fn open(
        &self,
        namespace: &str,
        id: capwire::durable::DurableObjectId,
    ) -> Result<capwire::durable::Storage, RpcError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let mut stores = self.stores.lock().unwrap();
        let key = format!("{namespace}/{id}");
        if let Some(storage) = stores.get(&key) {
            return Ok(storage.clone());
        }
        let storage = capwire::durable::Storage::in_memory()?;
        stores.insert(key, storage.clone());
        Ok(storage)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_provider_of_its_own_keeps_the_objects_state() {
    let dir = DataDir::new("provider");
    let memory = Memory::default();
    let made = Made::default();
    let host = builder(&dir, &made, Duration::from_millis(30))
        .storage(memory.clone())
        .config_str(CONFIG, "workers.toml")
        .unwrap();
    let ns = host.durable_object::<Counter>("app", "COUNTER").unwrap();
    assert_eq!(ns.get_by_name("alice").increment(Some(2)).await.unwrap(), 2);
    // Evicted, then made again: its state comes back from the provider.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while host.live_durable_objects() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "never evicted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ns.get_by_name("alice").increment(None).await.unwrap(), 3);
    assert_eq!(memory.opens.load(Ordering::SeqCst), 2);
    assert!(!dir.0.exists(), "nothing was written to the data directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_namespace_finds_its_objects_again_in_the_same_data_directory() {
    use capwire_examples::conformance::DurableCounter;
    let dir = DataDir::new("standalone");
    let first = capwire::durable::Namespace::<DurableCounter>::standalone("DurableCounter", &dir.0);
    assert_eq!(
        first.get_by_name("alice").increment(Some(4)).await.unwrap(),
        4
    );
    let id = first.get_by_name("alice").id().await.unwrap();
    drop(first);
    // As the conformance server restarted with the same --data-dir would.
    let again = capwire::durable::Namespace::<DurableCounter>::standalone("DurableCounter", &dir.0);
    assert_eq!(again.get_by_name("alice").value().await.unwrap(), 4);
    assert_eq!(again.get_by_name("alice").id().await.unwrap(), id);
    assert_eq!(id.len(), 64);
}
