//! Durable Objects: calls per second to one object, and durable writes per second.
//!
//! `cargo bench -p capwire --bench durable` runs three groups:
//!
//! - `in_process`: calls to one Durable Object through its namespace's stub, in the
//!   process of the host: `increment` (a storage `get` then a `put`, one durable commit per
//!   call) and `read` (a getter doing one `get`, no write), with 1 and with 64 calls in
//!   flight. The object runs one call at a time (its input gate), so 64 in flight measures
//!   the queue at the gate, not 64 calls at once.
//! - `websocket`: the same object's `increment` from another session: the host serves its
//!   worker with `listen` ([`capwire::host::Host::serve_until`] on 127.0.0.1), whose
//!   entrypoint method `counter()` returns the object's stub (`get_by_name("x")`); the
//!   client, made by [`capwire::connect`], calls `increment` on the stub it got back, with
//!   1 and with 64 in flight.
//! - `storage`: `Storage::put` of a small value (an integer, at one of 1,000 keys, never
//!   the value that key already holds) in a loop, on a file opened with
//!   [`capwire::durable::Storage::open`] (WAL, `synchronous=FULL`), next to the floor,
//!   measured in the same run: plain `rusqlite` with the same settings, one autocommit
//!   `INSERT OR REPLACE` of the same key and JSON text per put into a key-value table like
//!   the one `Storage` keeps. After the two criterion benchmarks, the same two loops run
//!   again in alternating blocks, for a ratio measured under the same disk conditions (see
//!   [`interleaved_puts`]).
//!
//! Every database (the object's, and both of the storage group's) gets [`PREWARM`] writes
//! before anything is measured, so that each WAL file has reached its steady size. Storage
//! files go in a fresh directory under [`std::env::temp_dir`], removed at the end:
//! what a put costs is mostly the disk's flush, so it depends on what that directory is on.
//! Everything runs on one multi-threaded tokio runtime; the loops run as tasks on it. After
//! criterion's own report, a summary prints calls/s, puts/s and the capwire/rusqlite ratio
//! (from the measurement samples only, not from the warm-up).

mod support;

use capwire::durable::{DurableObject, State, Storage};
use capwire::host::{Ctx, Entrypoint, Env, Host};
use capwire::{RpcError, Stub, entrypoint, rpc_target};
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{per_iteration, timed};

/// Calls kept outstanding in the windowed benchmarks.
const WINDOW: usize = 64;
/// Samples criterion takes per benchmark.
const SAMPLES: usize = 20;
/// Keys the storage benchmarks cycle through.
const KEYS: u64 = 1000;
/// Writes made to each database before anything is measured: enough for SQLite to fill
/// its WAL file to the checkpoint size (1,000 pages) and start reusing it, so that no
/// benchmark pays for the file's growth and the others not.
const PREWARM: u64 = 2000;
/// Rounds of the interleaved put comparison, and puts per database per round.
const ROUNDS: u64 = 100;
const BLOCK: u64 = 100;

// ---------------------------------------------------------------------------------------
// The object and the worker

pub struct Counter {
    state: State,
}

impl DurableObject for Counter {
    fn new(state: State, _env: Env) -> Self {
        Counter { state }
    }
}

#[rpc_target]
impl Counter {
    /// Read, then write: one durable commit per call.
    pub fn increment(&self) -> Result<i64, RpcError> {
        let storage = self.state.storage();
        let n = storage.get::<i64>("n")?.unwrap_or(0) + 1;
        storage.put("n", &n)?;
        Ok(n)
    }

    /// The count, read and not written.
    #[rpc(getter)]
    pub fn read(&self) -> Result<i64, RpcError> {
        Ok(self.state.storage().get::<i64>("n")?.unwrap_or(0))
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
    /// The object `x`, by reference.
    pub fn counter(&self) -> Result<Stub<Counter>, RpcError> {
        Ok(self
            .env
            .durable_object::<Counter>("COUNTER")?
            .get_by_name("x"))
    }
}

const CONFIG: &str = r#"
    [[worker]]
    name = "app"
    main = "Api"
    listen = "127.0.0.1:0"
    durable_objects = [{ name = "COUNTER", class_name = "Counter" }]
"#;

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "capwire-bench-durable-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create the temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Call loops

/// `iters` calls made by `call`, one at a time.
async fn serial<F, Fut>(iters: u64, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<i64, RpcError>>,
{
    let start = Instant::now();
    for _ in 0..iters {
        call().await.expect("call");
    }
    start.elapsed()
}

/// `iters` calls made by `call`, keeping `window` of them outstanding.
async fn windowed<F, Fut>(iters: u64, window: usize, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<i64, RpcError>>,
{
    let start = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut issued = 0u64;
    while issued < iters && in_flight.len() < window {
        in_flight.push(call());
        issued += 1;
    }
    while let Some(result) = in_flight.next().await {
        result.expect("call");
        if issued < iters {
            in_flight.push(call());
            issued += 1;
        }
    }
    start.elapsed()
}

/// `iters` calls of `call`, with 1 or [`WINDOW`] in flight.
async fn calls<F, Fut>(iters: u64, in_flight: usize, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<i64, RpcError>>,
{
    if in_flight == 1 {
        serial(iters, call).await
    } else {
        windowed(iters, in_flight, call).await
    }
}

// ---------------------------------------------------------------------------------------
// Storage loops

/// The number of the next put, across every loop: each put stores a value its key has
/// not held before. (SQLite skips writing a row that is replaced by identical content, and
/// a commit that changed no page has nothing to sync: a loop that stored the same values
/// again would measure no-ops.)
static NEXT: AtomicU64 = AtomicU64::new(0);

/// The numbers of the next `iters` puts.
fn numbers(iters: u64) -> std::ops::Range<u64> {
    let first = NEXT.fetch_add(iters, Ordering::Relaxed);
    first..first + iters
}

/// The key of put number `i`.
fn key(i: u64) -> String {
    format!("key{}", i % KEYS)
}

/// `iters` puts through capwire's `Storage`.
fn capwire_puts(storage: &Storage, iters: u64) -> Duration {
    let numbers = numbers(iters);
    let start = Instant::now();
    for i in numbers {
        storage.put(&key(i), &i).expect("put");
    }
    start.elapsed()
}

/// A plain rusqlite database with the settings `Storage::open` uses and a key-value table
/// like its own.
fn raw_database(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .expect("journal_mode");
    assert!(mode.eq_ignore_ascii_case("wal"), "journal mode {mode}");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy_timeout");
    conn.pragma_update(None, "foreign_keys", "ON")
        .expect("foreign_keys");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (
            key TEXT NOT NULL PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;",
    )
    .expect("schema");
    conn
}

/// `iters` autocommit inserts through rusqlite: the same key and the same JSON text as
/// [`capwire_puts`].
fn raw_puts(conn: &rusqlite::Connection, iters: u64) -> Duration {
    let numbers = numbers(iters);
    let start = Instant::now();
    for i in numbers {
        let json = serde_json::to_string(&i).expect("json");
        conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute([key(i), json]))
            .expect("insert");
    }
    start.elapsed()
}

/// Puts through capwire and through rusqlite in alternating blocks ([`ROUNDS`] rounds of
/// [`BLOCK`] puts each, the order swapped every round): the total time of each. The disk's
/// flush time drifts over seconds on a shared machine (other processes' writeback), which
/// the two criterion benchmarks, measured one after the other, each see differently; this
/// gives both the same conditions, for the ratio.
fn interleaved_puts(storage: &Storage, raw: &rusqlite::Connection) -> (Duration, Duration) {
    let (mut ours, mut floor) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            ours += capwire_puts(storage, BLOCK);
            floor += raw_puts(raw, BLOCK);
        } else {
            floor += raw_puts(raw, BLOCK);
            ours += capwire_puts(storage, BLOCK);
        }
    }
    (ours, floor)
}

// ---------------------------------------------------------------------------------------
// Benchmarks

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .throughput(Throughput::Elements(1))
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
}

fn objects(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &Path) {
    let host = Host::builder()
        .entrypoint::<Api>("Api")
        .durable_object::<Counter>("Counter")
        .data_dir(dir.join("objects"))
        .config_str(CONFIG, "workers.toml")
        .expect("the configuration is valid");
    let local = host
        .durable_object::<Counter>("app", "COUNTER")
        .expect("the binding")
        .get_by_name("x");
    rt.block_on(async {
        for _ in 0..PREWARM {
            local.increment().await.expect("increment");
        }
    });

    let mut group = c.benchmark_group("in_process");
    configure(&mut group);
    for (method, write) in [("increment", true), ("read", false)] {
        for (in_flight, name) in [
            (1, if write { "local/inc/1" } else { "local/read/1" }),
            (
                WINDOW,
                if write {
                    "local/inc/64"
                } else {
                    "local/read/64"
                },
            ),
        ] {
            group.bench_function(format!("{method}/{in_flight}_in_flight"), |b| {
                let stub = local.clone();
                b.to_async(rt).iter_custom(timed(name, move |iters| {
                    let stub = stub.clone();
                    async move {
                        if write {
                            calls(iters, in_flight, || stub.increment()).await
                        } else {
                            calls(iters, in_flight, || stub.read()).await
                        }
                    }
                }))
            });
        }
    }
    group.finish();

    // The same object, from a client session over a loopback WebSocket.
    let (stop, remote) = rt.block_on(async {
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
                .expect("serve")
        });
        let addr = addr_rx.await.expect("the bound address");
        let api: Stub<Api> = capwire::connect(&format!("ws://{addr}/"))
            .await
            .expect("connect");
        let counter = api.counter().await.expect("the object's stub");
        (stop_tx, counter)
    });

    let mut group = c.benchmark_group("websocket");
    configure(&mut group);
    for (in_flight, name) in [(1, "ws/inc/1"), (WINDOW, "ws/inc/64")] {
        group.bench_function(format!("increment/{in_flight}_in_flight"), |b| {
            let stub = remote.clone();
            b.to_async(rt).iter_custom(timed(name, move |iters| {
                let stub = stub.clone();
                async move { calls(iters, in_flight, || stub.increment()).await }
            }))
        });
    }
    group.finish();
    drop(remote);
    let _ = stop.send(());
}

/// Seconds of capwire puts and of rusqlite inserts from [`interleaved_puts`].
static INTERLEAVED: Mutex<Option<(Duration, Duration)>> = Mutex::new(None);

fn storage(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &Path) {
    let storage = Storage::open(dir.join("put.sqlite")).expect("open the storage");
    let raw = Arc::new(Mutex::new(raw_database(&dir.join("raw.sqlite"))));
    capwire_puts(&storage, PREWARM);
    raw_puts(&raw.lock().expect("the connection"), PREWARM);

    let mut group = c.benchmark_group("storage");
    configure(&mut group);
    group.bench_function("capwire_put", |b| {
        let storage = storage.clone();
        b.to_async(rt)
            .iter_custom(timed("put/capwire", move |iters| {
                let storage = storage.clone();
                async move { capwire_puts(&storage, iters) }
            }))
    });
    group.bench_function("rusqlite_insert", |b| {
        let raw = raw.clone();
        b.to_async(rt)
            .iter_custom(timed("put/rusqlite", move |iters| {
                let raw = raw.clone();
                async move { raw_puts(&raw.lock().expect("the connection"), iters) }
            }))
    });
    group.finish();

    // Unless a filter left the storage benchmarks out.
    if per_iteration("put/capwire", SAMPLES).is_some()
        && per_iteration("put/rusqlite", SAMPLES).is_some()
    {
        let times = interleaved_puts(&storage, &raw.lock().expect("the connection"));
        *INTERLEAVED.lock().expect("the interleaved times") = Some(times);
    }
}

fn summary() {
    let rate = |name: &str| per_iteration(name, SAMPLES).map(|t| 1.0 / t.as_secs_f64());
    let show = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
    println!();
    println!("summary (mean over the measurement samples)");
    println!(
        "  {:<34} {:>14} {:>14}",
        "calls to one Durable Object", "1 in flight/s", "64 in flight/s"
    );
    for (label, one, many) in [
        (
            "in process, increment (get+put)",
            "local/inc/1",
            "local/inc/64",
        ),
        ("in process, read (get)", "local/read/1", "local/read/64"),
        ("WebSocket, increment (get+put)", "ws/inc/1", "ws/inc/64"),
    ] {
        println!(
            "  {label:<34} {:>14} {:>14}",
            show(rate(one)),
            show(rate(many))
        );
    }
    let (ours, floor) = (rate("put/capwire"), rate("put/rusqlite"));
    let ratio = ours
        .zip(floor)
        .map_or_else(|| "-".to_owned(), |(a, b)| format!("{:.3}", a / b));
    println!(
        "  durable puts/s, criterion: capwire Storage::put {}, rusqlite INSERT OR REPLACE {}, \
         ratio {ratio}",
        show(ours),
        show(floor)
    );
    if let Some((ours, floor)) = *INTERLEAVED.lock().expect("the interleaved times") {
        let puts = (ROUNDS * BLOCK) as f64;
        println!(
            "  durable puts/s, interleaved ({ROUNDS} rounds of {BLOCK} each): capwire {:.0}, \
             rusqlite {:.0}, ratio {:.3}",
            puts / ours.as_secs_f64(),
            puts / floor.as_secs_f64(),
            floor.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = TempDir::new();
    let mut c = Criterion::default().configure_from_args();
    objects(&mut c, &rt, &dir.0);
    storage(&mut c, &rt, &dir.0);
    c.final_summary();
    summary();
}
