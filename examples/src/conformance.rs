//! The conformance service of `shared/CONFORMANCE.md`, written with capwire's macros.
//!
//! `TestTarget` is the main object of every session; `Counter` and `Vault` are handed out
//! by reference.

use capwire::typescript::TS;
use capwire::{
    Blob, Function, ReadableStream, Request, Response, RpcError, RpcPromise, Stub, Value,
    WritableStream, entrypoint, rpc_target,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest list `generateFibonacci` and `listIds` make.
pub const MAX_LIST: u32 = 1_000_000;

/// A `RangeError` for a list longer than [`MAX_LIST`].
fn check_list_size(n: u32) -> Result<(), RpcError> {
    if n > MAX_LIST {
        return Err(RpcError::range(format!(
            "n must be at most {MAX_LIST}, not {n}"
        )));
    }
    Ok(())
}

/// The main object of every conformance session.
#[derive(Default)]
pub struct TestTarget;

/// The result of `callSquare`: a promise inside a value.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct CallSquareResult {
    /// The promised square.
    pub result: RpcPromise<f64>,
}

/// The result of `callFunction`.
#[derive(Serialize, Deserialize, Debug, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct CallFunctionResult {
    /// What the function returned.
    pub result: Value,
}

/// The result of `foo`: a function inside plain data.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct Foo {
    /// `{ baz }`.
    pub bar: Bar,
}

/// Holds `baz`.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct Bar {
    /// Returns `"qux"`.
    pub baz: Function<(), String>,
}

/// A user record.
#[derive(Serialize, Deserialize, Debug, PartialEq, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct User {
    /// The ID.
    pub id: i64,
    /// `"user" + id`.
    pub name: String,
}

/// The main object of every conformance session (`TestTarget` in CONFORMANCE.md).
#[entrypoint]
impl TestTarget {
    /// `i * i`.
    pub fn square(&self, i: f64) -> f64 {
        i * i
    }

    /// `a + b`.
    pub fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }

    /// `{ result: target.square(i) }`, with the call not awaited: a promise in a value.
    pub fn call_square(&self, target: Stub<TestTarget>, i: f64) -> CallSquareResult {
        CallSquareResult {
            result: target.square(i),
        }
    }

    /// `{ result: await func(i) }`: calls back into the caller's function mid-call.
    pub async fn call_function(
        &self,
        func: Function<(f64,)>,
        i: f64,
    ) -> Result<CallFunctionResult, RpcError> {
        Ok(CallFunctionResult {
            result: func.call((i,)).await?,
        })
    }

    /// A closure `(increment = 0) => total` keeping a running total from 0.
    pub fn new_counter_fn(&self) -> Function<(Option<f64>,), f64> {
        let total = Mutex::new(0.0);
        Function::new(move |increment: Option<f64>| {
            let mut total = total
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *total += increment.unwrap_or(0.0);
            *total
        })
    }

    /// `{ bar: { baz: F } }`, `F` a function returning `"qux"`.
    pub fn foo(&self) -> Foo {
        Foo {
            bar: Bar {
                baz: Function::new(|| "qux".to_owned()),
            },
        }
    }

    /// Rejects with `RangeError: test error`.
    pub fn throw_error(&self) -> Result<(), RpcError> {
        Err(RpcError::range("test error"))
    }

    /// A new counter starting at `i`, by reference.
    pub fn make_counter(&self, i: i64) -> Counter {
        Counter::new(i)
    }

    /// A new counter starting at 0, by reference.
    pub fn get_counter(&self) -> Counter {
        Counter::new(0)
    }

    /// `await c.increment(i)`.
    pub async fn increment_counter(
        &self,
        c: Stub<Counter>,
        i: Option<i64>,
    ) -> Result<i64, RpcError> {
        c.increment(Some(i.unwrap_or(1))).await
    }

    /// `await c.increment(i)`, for a counter that may live anywhere.
    pub async fn use_counter(&self, c: Stub<Counter>, i: Option<i64>) -> Result<i64, RpcError> {
        c.increment(Some(i.unwrap_or(1))).await
    }

    /// The first `n` Fibonacci numbers, as JavaScript numbers (past the 1476th they are
    /// `Infinity`, as in JavaScript). `n` above [`MAX_LIST`] is refused: the caller picks
    /// `n`, so it must not pick how much this allocates.
    pub fn generate_fibonacci(&self, n: u32) -> Result<Vec<f64>, RpcError> {
        check_list_size(n)?;
        let mut seq: Vec<f64> = Vec::new();
        for k in 0..n as usize {
            seq.push(if k < 2 {
                k as f64
            } else {
                seq[k - 1] + seq[k - 2]
            });
        }
        Ok(seq)
    }

    /// `null`.
    pub fn return_null(&self) -> Option<f64> {
        None
    }

    /// `undefined`.
    pub fn return_undefined(&self) {}

    /// `i`.
    pub fn return_number(&self, i: f64) -> f64 {
        i
    }

    /// `v`, unchanged.
    pub fn echo(&self, v: Value) -> Value {
        v
    }

    /// `v`, after `ms` milliseconds, without blocking other calls.
    pub async fn delay(&self, ms: f64, v: Value) -> Value {
        tokio::time::sleep(Duration::from_secs_f64(ms.max(0.0) / 1000.0)).await;
        v
    }

    /// At once, a promise made from a future that settles to `v` after `ms` milliseconds:
    /// calls pipelined on it (`later(50, makeCounter(1)).increment(2)`) wait for it, then
    /// are delivered in the order they were made.
    pub fn later(&self, ms: f64, v: Value) -> RpcPromise {
        RpcPromise::from_future(async move {
            tokio::time::sleep(Duration::from_secs_f64(ms.max(0.0) / 1000.0)).await;
            Ok(v)
        })
    }

    /// A stub of the Durable Object `DurableCounter` named `name`: every session reaches
    /// the same object, and so does the same server after a restart with the same
    /// `--data-dir`.
    pub fn durable_counter(&self, name: String) -> Stub<DurableCounter> {
        durable_counters().get_by_name(&name)
    }

    /// `[1, 2, …, n]`; `n` above [`MAX_LIST`] is refused.
    pub fn list_ids(&self, n: u32) -> Result<Vec<u32>, RpcError> {
        check_list_size(n)?;
        Ok((1..=n).collect())
    }

    /// `{ id, name: "user" + id }`.
    pub fn get_user(&self, id: i64) -> User {
        User {
            id,
            name: format!("user{id}"),
        }
    }

    /// A new vault holding `secret`, by reference.
    pub fn make_vault(&self, secret: String) -> Vault {
        Vault::new(secret)
    }

    /// A stream of exactly `n` bytes, byte `k` being `k % 251`, made as it is read.
    pub fn read_bytes(&self, n: u64) -> ReadableStream {
        ReadableStream::new(futures::stream::unfold(0, move |k| async move {
            (k < n).then(|| {
                let end = n.min(k + STREAM_CHUNK);
                (Ok::<_, RpcError>(pattern(k, end)), end)
            })
        }))
    }

    /// The count and the checksum (sum mod 2^32) of the bytes of `stream`.
    pub async fn sum_bytes(&self, mut stream: ReadableStream) -> Result<ByteSum, RpcError> {
        let mut sum = ByteSum::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            sum.bytes += chunk.len() as u64;
            for &b in chunk.iter() {
                sum.checksum = sum.checksum.wrapping_add(u32::from(b));
            }
        }
        Ok(sum)
    }

    /// Writes `n` bytes (byte `k` = `k % 251`) into `w` in chunks of at most 64 KiB, closes
    /// it, and returns `n`.
    pub async fn write_bytes(&self, n: u64, mut w: WritableStream) -> Result<u64, RpcError> {
        let mut k = 0;
        while k < n {
            let end = n.min(k + STREAM_CHUNK);
            w.write(pattern(k, end)).await?;
            k = end;
        }
        w.close().await?;
        Ok(n)
    }

    /// A stream of any values back: the same values in the same order (objects, strings,
    /// numbers, stubs; a stub chunk still calls its original object). Each chunk goes on
    /// as it arrives, under flow control both ways.
    pub fn echo_stream(&self, stream: ReadableStream<Value>) -> ReadableStream<Value> {
        stream
    }

    /// The same bytes and type.
    pub fn echo_blob(&self, blob: Blob) -> Blob {
        blob
    }

    /// `200`, header `x-method` set to the request's method, and the request's body.
    pub fn echo_request(&self, request: Request) -> Response {
        let mut response = Response::new(capwire::http::StatusCode::OK);
        if let Ok(method) = request.method.as_str().parse() {
            response.headers.insert("x-method", method);
        }
        response.body = request.body;
        response
    }
}

/// Largest chunk `readBytes` and `writeBytes` make.
const STREAM_CHUNK: u64 = 64 * 1024;

/// Bytes `start..end` of the conformance pattern (byte `k` is `k % 251`). Spans up to
/// [`STREAM_CHUNK`] long are views of one shared buffer, so making them costs nothing.
pub fn pattern(start: u64, end: u64) -> bytes::Bytes {
    static PERIODS: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    let len = end.saturating_sub(start);
    if len > STREAM_CHUNK {
        return (start..end).map(|k| (k % 251) as u8).collect();
    }
    let periods =
        PERIODS.get_or_init(|| (0..STREAM_CHUNK + 251).map(|k| (k % 251) as u8).collect());
    let from = (start % 251) as usize;
    periods.slice(from..from + len as usize)
}

/// The result of `sumBytes`.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq, Eq, TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct ByteSum {
    /// How many bytes were read.
    pub bytes: u64,
    /// Their sum, mod 2^32.
    pub checksum: u32,
}

/// A counter handed out by reference.
pub struct Counter {
    value: Mutex<i64>,
}

/// Counters alive in this process.
static LIVE_COUNTERS: AtomicU64 = AtomicU64::new(0);

impl Counter {
    /// A counter starting at `start`.
    pub fn new(start: i64) -> Counter {
        LIVE_COUNTERS.fetch_add(1, Ordering::SeqCst);
        Counter {
            value: Mutex::new(start),
        }
    }

    /// How many counters exist in this process right now: dropping one (its dispose hook)
    /// counts it out, which leak checks observe.
    pub fn live() -> u64 {
        LIVE_COUNTERS.load(Ordering::SeqCst)
    }

    fn add(&self, amount: i64) -> i64 {
        let mut v = self
            .value
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *v += amount;
        *v
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        LIVE_COUNTERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A counter handed out by reference.
#[rpc_target]
impl Counter {
    /// Adds `amount` (default 1) and returns the new value.
    pub fn increment(&self, amount: Option<i64>) -> i64 {
        self.add(amount.unwrap_or(1))
    }

    /// The current value (a property read on the wire).
    #[rpc(getter)]
    pub fn value(&self) -> i64 {
        self.add(0)
    }
}

/// Holds a secret nobody can read; counts how often it was opened.
#[derive(Debug)]
pub struct Vault {
    secret: String,
    opens_count: AtomicU64,
}

impl Clone for Vault {
    fn clone(&self) -> Self {
        Vault {
            secret: self.secret.clone(),
            opens_count: AtomicU64::new(self.opens_count.load(Ordering::Relaxed)),
        }
    }
}

impl Drop for Vault {
    fn drop(&mut self) {}
}

/// Holds a secret nobody can read; counts how often it was opened.
#[rpc_target]
impl Vault {
    /// `true` when `guess` is the secret; counts the call.
    pub fn open(&self, guess: String) -> bool {
        self.opens_count.fetch_add(1, Ordering::Relaxed);
        self.matches(&guess)
    }

    /// How many times `open` was called.
    #[rpc(getter)]
    pub fn opens(&self) -> u64 {
        self.opens_count.load(Ordering::Relaxed)
    }

    /// Crate-visible, so not reachable over RPC.
    pub(crate) fn secret(&self) -> String {
        self.secret.clone()
    }

    fn matches(&self, guess: &str) -> bool {
        guess == self.secret
    }
}

impl Vault {
    /// A vault holding `secret`.
    pub fn new(secret: String) -> Vault {
        Vault {
            secret,
            opens_count: AtomicU64::new(0),
        }
    }

    /// The secret, for this crate's own tests.
    pub fn reveal_for_tests(&self) -> String {
        self.secret()
    }
}

/// The Durable Object of `durableCounter(name)`: a counter whose value is stored durably.
pub struct DurableCounter {
    state: capwire::durable::State,
}

impl capwire::durable::DurableObject for DurableCounter {
    fn new(state: capwire::durable::State, _env: capwire::host::Env) -> Self {
        DurableCounter { state }
    }
}

/// The Durable Object of `durableCounter(name)`: a counter whose value is stored durably.
#[rpc_target]
impl DurableCounter {
    /// Adds `amount` (default 1) and returns the new value, stored before it is returned.
    pub fn increment(&self, amount: Option<i64>) -> Result<i64, RpcError> {
        let storage = self.state.storage();
        let n = storage.get::<i64>("value")?.unwrap_or(0) + amount.unwrap_or(1);
        storage.put("value", &n)?;
        Ok(n)
    }

    /// The stored value (0 for a new object).
    #[rpc(getter)]
    pub fn value(&self) -> Result<i64, RpcError> {
        Ok(self.state.storage().get::<i64>("value")?.unwrap_or(0))
    }

    /// The object's ID: 64 lowercase hex digits, the same for the same name on every run.
    #[rpc(getter)]
    pub fn id(&self) -> String {
        self.state.id().to_string()
    }
}

static DURABLE_COUNTERS: std::sync::OnceLock<capwire::durable::Namespace<DurableCounter>> =
    std::sync::OnceLock::new();

/// Where `durableCounter` objects keep their storage (the server's `--data-dir`). Without
/// it, a directory of this process under the system's temporary directory. Takes effect
/// only before the first `durableCounter` call.
pub fn set_data_dir(dir: impl Into<std::path::PathBuf>) {
    let dir = dir.into();
    DURABLE_COUNTERS.get_or_init(|| capwire::durable::Namespace::standalone("DurableCounter", dir));
}

fn durable_counters() -> &'static capwire::durable::Namespace<DurableCounter> {
    DURABLE_COUNTERS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("capwire-conformance-{}", std::process::id()));
        capwire::durable::Namespace::standalone("DurableCounter", dir)
    })
}

/// Binds a conformance server to `addr` and returns it with its address, not yet serving.
pub async fn bind(addr: &str) -> std::io::Result<(capwire::Server, std::net::SocketAddr)> {
    let server = capwire::Server::bind(addr).await?;
    let local = server.local_addr()?;
    Ok((server, local))
}

/// The conformance server's command line (see `examples/conformance-server`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `--listen HOST:PORT` (default `127.0.0.1:8787`).
    pub listen: Option<String>,
    /// `--data-dir DIR`: where `durableCounter` objects keep their storage.
    pub data_dir: Option<String>,
    /// Each `--allowed-origin ORIGIN`, in order.
    pub allowed_origins: Vec<String>,
    /// `--typescript`: print the declarations and exit.
    pub typescript: bool,
}

impl Args {
    /// Reads the arguments (without the program's name); a problem says what to write.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut out = Args::default();
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            let mut value = |example: &str| {
                args.next()
                    .ok_or_else(|| format!("{a} needs a value, e.g. {example}"))
            };
            match a.as_str() {
                "--listen" => out.listen = Some(value("127.0.0.1:0")?),
                "--data-dir" => out.data_dir = Some(value("./conformance-data")?),
                "--allowed-origin" => out.allowed_origins.push(value("http://localhost:5173")?),
                "--typescript" => out.typescript = true,
                other => {
                    return Err(format!(
                        "unknown argument {other}; usage: --listen HOST:PORT [--data-dir DIR] \
                         [--allowed-origin ORIGIN]... | --typescript"
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// The conformance server's policy: without `--allowed-origin`, any origin
/// (`Access-Control-Allow-Origin: *`); with it, only the origins listed.
pub fn cors_policy(allowed_origins: Vec<String>) -> capwire::CorsPolicy {
    if allowed_origins.is_empty() {
        capwire::CorsPolicy::any()
    } else {
        capwire::CorsPolicy::allow_origins(allowed_origins)
    }
}

/// Serves the conformance service on a bound server until the process ends.
pub async fn run(server: capwire::Server) -> std::io::Result<()> {
    server.serve(|| TestTarget).await
}
