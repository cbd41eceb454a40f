//! The seed scenarios of Workers RPC, as capwire workers: the quickstart runs them from
//! `quickstart/workers.toml`, and the tests assert their results.

use crate::conformance::{Counter, Foo};
use capwire::host::{Ctx, Entrypoint, Env};
use capwire::{Function, RpcError, Stub, entrypoint};
use std::sync::Mutex;

/// Signups recorded by `WorkerA::signup`'s `wait_until` work: state that outlives an
/// invocation lives outside the entrypoint (here a process-wide list, standing in for a
/// database).
static SIGNUPS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The signups recorded so far.
pub fn signups() -> Vec<String> {
    SIGNUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Worker B: adds.
pub struct WorkerB;

impl Entrypoint for WorkerB {
    fn new(_env: Env, _ctx: Ctx) -> Self {
        WorkerB
    }
}

#[entrypoint]
impl WorkerB {
    /// `a + b`.
    pub fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    /// A stream of `n` bytes, made as it is read.
    pub fn download(&self, n: u64) -> capwire::ReadableStream {
        capwire::ReadableStream::new(futures::stream::iter(
            (0..n)
                .step_by(65536)
                .map(move |at| Ok::<_, RpcError>(vec![7u8; (n - at).min(65536) as usize])),
        ))
    }

    /// How many bytes `stream` holds, read as they arrive.
    pub async fn count(&self, mut stream: capwire::ReadableStream) -> Result<u64, RpcError> {
        use futures::StreamExt;
        let mut total = 0;
        while let Some(chunk) = stream.next().await {
            total += chunk?.len() as u64;
        }
        Ok(total)
    }
}

/// Worker A: calls worker B, reads a variable, and records signups after answering.
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
    /// `WORKER_B.add(a, b)`, through the service binding.
    pub async fn add_via_b(&self, a: i64, b: i64) -> Result<i64, RpcError> {
        self.env
            .service::<Stub<WorkerB>>("WORKER_B")?
            .add(a, b)
            .await
    }

    /// Streams `n` bytes from worker B and hands the stream back to B to count: the bytes
    /// pass through here without being held.
    pub async fn relay_via_b(&self, n: u64) -> Result<u64, RpcError> {
        let b = self.env.service::<Stub<WorkerB>>("WORKER_B")?;
        let stream = b.download(n).await?;
        b.count(stream).await
    }

    /// `"{GREETING}, {name}!"`, `GREETING` being a `[vars]` entry.
    pub fn greet(&self, name: String) -> Result<String, RpcError> {
        Ok(format!("{}, {name}!", self.env.var::<String>("GREETING")?))
    }

    /// Answers at once; the signup is recorded afterwards, by `wait_until` work.
    pub fn signup(&self, user: String) -> String {
        let reply = format!("welcome, {user}");
        self.ctx.wait_until(async move {
            tokio::task::yield_now().await;
            SIGNUPS
                .lock()
                .map_err(|_| "the signup list is poisoned")?
                .push(user);
            Ok::<_, &str>(())
        });
        reply
    }
}

/// The counter service: a closure, a target, a target pipelined on, and a function inside
/// plain data.
pub struct CounterService {
    env: Env,
}

impl Entrypoint for CounterService {
    fn new(env: Env, _ctx: Ctx) -> Self {
        CounterService { env }
    }
}

#[entrypoint]
impl CounterService {
    /// Increments the durable counter called `name` (a Durable Object of the `COUNTER`
    /// namespace): its value survives restarts.
    pub async fn durable_increment(&self, name: String) -> Result<i64, RpcError> {
        self.env
            .durable_object::<crate::conformance::DurableCounter>("COUNTER")?
            .get_by_name(&name)
            .increment(None)
            .await
    }

    /// A closure keeping a running total: `f(2), f(1), f(-5)` give 2, 3, -2.
    pub fn new_counter_fn(&self) -> Function<(i64,), i64> {
        let total = Mutex::new(0);
        Function::new(move |n: i64| {
            let mut total = total
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *total += n;
            *total
        })
    }

    /// A `Counter` starting at 0, by reference.
    pub fn get_counter(&self) -> Counter {
        Counter::new(0)
    }

    /// `{ bar: { baz: () => "qux" } }`.
    pub fn foo(&self) -> Foo {
        crate::conformance::TestTarget.foo()
    }
}

/// Another service: uses a counter it is handed, wherever the counter lives.
pub struct AnotherService;

impl Entrypoint for AnotherService {
    fn new(_env: Env, _ctx: Ctx) -> Self {
        AnotherService
    }
}

#[entrypoint]
impl AnotherService {
    /// `counter.increment(by)`.
    pub async fn use_counter(&self, counter: Stub<Counter>, by: i64) -> Result<i64, RpcError> {
        counter.increment(Some(by)).await
    }
}

/// The introducer: gets a counter from `COUNTER_SERVICE` and hands it to
/// `ANOTHER_SERVICE`, whose calls on it are proxied back to the counter service.
pub struct Introducer {
    env: Env,
}

impl Entrypoint for Introducer {
    fn new(env: Env, _ctx: Ctx) -> Self {
        Introducer { env }
    }
}

#[entrypoint]
impl Introducer {
    /// Introduces a new counter to the other service; returns what it reads after
    /// incrementing by `by` twice.
    pub async fn introduce(&self, by: i64) -> Result<i64, RpcError> {
        let counters = self
            .env
            .service::<Stub<CounterService>>("COUNTER_SERVICE")?;
        let other = self
            .env
            .service::<Stub<AnotherService>>("ANOTHER_SERVICE")?;
        let counter = counters.get_counter().await?;
        other.use_counter(counter.clone(), by).await?;
        other.use_counter(counter, by).await
    }
}

/// Registers every entrypoint type of these examples, and the to-do app's database.
pub fn register(
    builder: capwire::host::HostBuilder,
) -> Result<capwire::host::HostBuilder, RpcError> {
    Ok(crate::todo::register(builder)?
        .entrypoint::<WorkerA>("WorkerA")
        .entrypoint::<WorkerB>("WorkerB")
        .entrypoint::<CounterService>("CounterService")
        .durable_object::<crate::conformance::DurableCounter>("DurableCounter")
        .entrypoint::<AnotherService>("AnotherService")
        .entrypoint::<Introducer>("Introducer"))
}

/// What the seed scenarios returned, in order: one line each (a description and the
/// result).
pub type Report = Vec<(String, String)>;

/// Runs every seed scenario against `host` (started from `quickstart/workers.toml`), and
/// `add(1, 2)` once more through `remote`, a host that reaches worker B over WebSocket.
pub async fn scenarios(
    host: &capwire::host::Host,
    remote: &capwire::host::Host,
) -> Result<Report, RpcError> {
    let mut report = Report::new();
    let mut line = |what: &str, result: String| report.push((what.to_owned(), result));

    let a: Stub<WorkerA> = host.service("worker-a", None)?;
    line(
        "worker A calls worker B's add(1, 2), in-process",
        a.add_via_b(1, 2).await?.to_string(),
    );
    let remote_a: Stub<WorkerA> = remote.service("worker-a", None)?;
    line(
        "worker A calls worker B's add(1, 2), over WebSocket",
        remote_a.add_via_b(1, 2).await?.to_string(),
    );
    line(
        "worker A relays a 1 MiB stream from worker B back to B, in-process",
        a.relay_via_b(1 << 20).await?.to_string(),
    );
    line(
        "worker A relays a 1 MiB stream from worker B back to B, over WebSocket",
        remote_a.relay_via_b(1 << 20).await?.to_string(),
    );
    line(
        "greet(\"Ada\") with GREETING from [vars]",
        a.greet("Ada").await?,
    );
    let reply = a.signup("ada").await?;
    host.drain().await;
    line(
        "signup(\"ada\") answers, then wait_until records it",
        format!("{reply:?}; recorded: {:?}", signups()),
    );

    let counters: Stub<CounterService> = host.service("counter-service", None)?;
    let f = counters.new_counter_fn().await?;
    let mut totals = Vec::new();
    for n in [2, 1, -5] {
        totals.push(f.call((n,)).await?);
    }
    line("the counter closure with 2, 1, -5", format!("{totals:?}"));
    let counter = counters.get_counter().await?;
    let mut values = Vec::new();
    for n in [2, 1, -5] {
        values.push(counter.increment(Some(n)).await?);
    }
    line(
        "the Counter target with 2, 1, -5, then value",
        format!("{values:?}, value {}", counter.value().await?),
    );
    line(
        "get_counter().increment(), pipelined",
        counters.get_counter().increment(None).await?.to_string(),
    );
    let qux = counters
        .foo()
        .get(["bar", "baz"])
        .typed::<Function<(), String>>()
        .function()
        .call(())
        .await?;
    line("foo().bar.baz()", format!("{qux:?}"));
    line(
        "the durable counter \"alice\" (a Durable Object: higher on every run)",
        counters.durable_increment("alice").await?.to_string(),
    );
    let introducer: Stub<Introducer> = host.service("introducer", None)?;
    line(
        "the introducer passes a counter to another service (2 + 2)",
        introducer.introduce(2).await?.to_string(),
    );

    use crate::todo::{AdminApp, UserEntrypoint};
    let admin_app: Stub<AdminApp> = host.service("admin-app", None)?;
    let ids = admin_app
        .onboard(vec!["ada".into(), "grace".into()])
        .await?;
    line(
        "to-do: the admin app creates users through AdminEntrypoint",
        format!("{ids:?}"),
    );
    let user: Stub<UserEntrypoint> = host.service("todo", Some("UserEntrypoint"))?;
    user.create_task(ids[0], "write the docs").await?;
    user.create_task(ids[0], "ship it").await?;
    let titles: Vec<String> = user
        .get_tasks(ids[0])
        .await?
        .into_iter()
        .map(|t| t.title)
        .collect();
    line(
        "to-do: UserEntrypoint's tasks of the first user",
        format!("{titles:?}"),
    );
    let removed = admin_app.offboard(ids[0]).await?;
    let left = user.get_tasks(ids[0]).await?.len();
    line(
        "to-do: delete_user through the admin app, then the user's tasks",
        format!("deleted {removed}, {left} tasks left"),
    );
    Ok(report)
}

/// The quickstart: starts a host from the config file at `config` (serving what it says
/// to serve; its Durable Objects stored under `data_dir`, or the config's `data_dir`), a
/// second host whose worker B is reached over WebSocket at the first one's address, runs
/// the scenarios, and shuts both down.
pub async fn quickstart(
    config: &std::path::Path,
    data_dir: Option<&std::path::Path>,
) -> Result<Report, Box<dyn std::error::Error>> {
    use capwire::host::Host;
    let mut builder = register(Host::builder())?;
    if let Some(dir) = data_dir {
        builder = builder.data_dir(dir);
    }
    let host = builder.config_file(config)?;
    let serving = host.start().await?;
    let addr = serving
        .addr("worker-b")
        .ok_or("worker-b is not listening")?;
    // The same workers, with worker B running elsewhere: at that address.
    let mut table: toml::Table = std::fs::read_to_string(config)?.parse()?;
    let worker_b = table
        .get_mut("worker")
        .and_then(toml::Value::as_array_mut)
        .and_then(|ws| {
            ws.iter_mut()
                .filter_map(toml::Value::as_table_mut)
                .find(|w| w.get("name").and_then(toml::Value::as_str) == Some("worker-b"))
        })
        .ok_or("the config has no worker named worker-b")?;
    worker_b.remove("main");
    worker_b.remove("listen");
    worker_b.insert("url".into(), format!("ws://{addr}").into());
    let text = table.to_string();
    let mut remote = register(Host::builder())?;
    if let Some(dir) = data_dir {
        remote = remote.data_dir(dir);
    }
    let remote = remote.config_str(&text, config.with_extension("remote-b"))?;
    let report = scenarios(&host, &remote).await;
    serving.stop().await?;
    Ok(report?)
}
