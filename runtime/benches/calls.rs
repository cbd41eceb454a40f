//! Call throughput and pipelining latency.
//!
//! `cargo bench -p capwire --bench calls` runs three groups:
//!
//! - `websocket`: calls per second to a tiny object (`square`) served by a real
//!   [`capwire::Server`] on 127.0.0.1, from a client made by [`capwire::connect`], with 1
//!   and with 64 calls in flight.
//! - `raw_websocket`: the floor capwire is compared against, measured in the same run: a bare
//!   tokio-tungstenite echo server and client over loopback doing the same number of
//!   request/response round trips of a text frame the size of a capwire `push`, with 1 and
//!   with 64 in flight.
//! - `chain`: a chain of 10 dependent calls over an in-memory link with a 10 ms one-way
//!   delay, pipelined (each call made on the previous, un-awaited promise) and awaited one
//!   by one, with a single call on the same link as the measured round trip (tokio's timer
//!   has millisecond ticks, so one 10 ms hop takes a little over 10 ms).
//!
//! Everything runs on one multi-threaded tokio runtime; the client loops run as tasks on it,
//! like application code would. After criterion's own report, a summary prints calls/s,
//! the capwire/raw ratios and the round trips per chain (computed from the measurement
//! samples only, not from the warm-up).

mod support;

use capwire::transport::memory;
use capwire::{CallFuture, RpcError, RpcObject, RpcStub, Session, Value};
use criterion::{Criterion, SamplingMode, Throughput};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, SinkExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{per_iteration, timed};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Calls kept outstanding in the pipelined throughput benchmarks.
const WINDOW: usize = 64;
/// Calls in each dependent chain.
const CHAIN_LEN: usize = 10;
/// One-way delay of the in-memory link used for chains.
const ONE_WAY: Duration = Duration::from_millis(10);
/// Samples criterion takes per throughput benchmark.
const WS_SAMPLES: usize = 20;
/// Samples criterion takes per chain benchmark.
const CHAIN_SAMPLES: usize = 10;
/// The raw baseline's request: the size of the `push` capwire sends for `square(n)`.
const RAW_FRAME: &str = r#"["push",["pipeline",0,["square"],[1234]]]"#;

// ---------------------------------------------------------------------------------------
// Objects served

/// The throughput benchmarks' main object.
struct Calculator;

impl RpcObject for Calculator {
    fn call(self: Arc<Self>, method: &str, args: Vec<Value>) -> CallFuture {
        let result = match method {
            "square" => capwire::arg::<f64>(&args, 0, method, "i").map(|i| Value::from(i * i)),
            other => Err(RpcError::not_a_function(other)),
        };
        Box::pin(std::future::ready(result))
    }
}

/// A link in a chain: `next()` hands out the following node by reference, `depth()` says
/// how far from the main object it is.
struct Node {
    depth: u32,
}

impl RpcObject for Node {
    fn call(self: Arc<Self>, method: &str, _args: Vec<Value>) -> CallFuture {
        let result = match method {
            "next" => Ok(RpcStub::new(Node {
                depth: self.depth + 1,
            })
            .into()),
            "depth" => Ok(Value::from(self.depth)),
            other => Err(RpcError::not_a_function(other)),
        };
        Box::pin(std::future::ready(result))
    }
}

// ---------------------------------------------------------------------------------------
// capwire over WebSocket

async fn capwire_server() -> SocketAddr {
    let server = capwire::Server::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("local address");
    tokio::spawn(server.serve(|| Calculator));
    addr
}

/// `iters` calls, one at a time.
async fn capwire_serial(api: RpcStub, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        let n = (i % 1000) as f64;
        let got: f64 = api.call("square", (n,)).typed().await.expect("square");
        assert_eq!(got, n * n);
    }
    start.elapsed()
}

/// `iters` calls, keeping `window` of them outstanding.
async fn capwire_windowed(api: RpcStub, iters: u64, window: usize) -> Duration {
    let start = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut issued = 0u64;
    let call = |i: u64| {
        let n = (i % 1000) as f64;
        api.call("square", (n,)).typed::<f64>().map(move |r| (n, r))
    };
    while issued < iters && in_flight.len() < window {
        in_flight.push(call(issued));
        issued += 1;
    }
    while let Some((n, got)) = in_flight.next().await {
        assert_eq!(got.expect("square"), n * n);
        if issued < iters {
            in_flight.push(call(issued));
            issued += 1;
        }
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------
// Raw tokio-tungstenite baseline

type RawClient = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An echo server: every text frame is sent back. Frames that are ready together are
/// flushed together, as capwire's session loop does.
async fn raw_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).expect("nodelay");
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp)
                    .await
                    .expect("handshake");
                while let Some(Ok(frame)) = ws.next().await {
                    if frame.is_close() {
                        break;
                    }
                    if ws.feed(frame).await.is_err() {
                        break;
                    }
                    while let Some(Some(Ok(frame))) = ws.next().now_or_never() {
                        if ws.feed(frame).await.is_err() {
                            return;
                        }
                    }
                    if ws.flush().await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn raw_client(addr: SocketAddr) -> RawClient {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), None, true)
        .await
        .expect("connect");
    ws
}

fn expect_echo(frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) {
    match frame {
        Some(Ok(Message::Text(t))) => assert_eq!(t.len(), RAW_FRAME.len()),
        other => panic!("unexpected frame: {other:?}"),
    }
}

/// `iters` round trips, one at a time.
async fn raw_serial(ws: Arc<tokio::sync::Mutex<RawClient>>, iters: u64) -> Duration {
    let mut ws = ws.lock().await;
    let start = Instant::now();
    for _ in 0..iters {
        ws.send(Message::text(RAW_FRAME)).await.expect("send");
        expect_echo(ws.next().await);
    }
    start.elapsed()
}

/// `iters` round trips, keeping `window` outstanding.
async fn raw_windowed(
    ws: Arc<tokio::sync::Mutex<RawClient>>,
    iters: u64,
    window: usize,
) -> Duration {
    let mut ws = ws.lock().await;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut received = 0u64;
    while sent < iters && sent < window as u64 {
        ws.feed(Message::text(RAW_FRAME)).await.expect("send");
        sent += 1;
    }
    ws.flush().await.expect("flush");
    while received < iters {
        expect_echo(ws.next().await);
        received += 1;
        while received < sent {
            match ws.next().now_or_never() {
                Some(frame) => expect_echo(frame),
                None => break,
            }
            received += 1;
        }
        let refill = (received + window as u64).min(iters);
        if sent < refill {
            while sent < refill {
                ws.feed(Message::text(RAW_FRAME)).await.expect("send");
                sent += 1;
            }
            ws.flush().await.expect("flush");
        }
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------
// Chains over a slow in-memory link

/// A chain with each call made on the previous, un-awaited promise; only the last awaited.
async fn chain_pipelined(root: RpcStub) {
    let mut node = root.call("next", ());
    for _ in 2..CHAIN_LEN {
        node = node.call("next", ());
    }
    let depth: u32 = node.call("depth", ()).typed().await.expect("depth");
    assert_eq!(depth as usize, CHAIN_LEN - 1);
}

/// One call on the same link: the measured cost of one round trip, for reference.
async fn single_call(root: RpcStub) {
    let depth: u32 = root.call("depth", ()).typed().await.expect("depth");
    assert_eq!(depth, 0);
}

/// The same chain, awaiting each call before making the next.
async fn chain_sequential(root: RpcStub) {
    let mut node = root;
    for _ in 1..CHAIN_LEN {
        node = node
            .call("next", ())
            .typed::<RpcStub>()
            .await
            .expect("next");
    }
    let depth: u32 = node.call("depth", ()).typed().await.expect("depth");
    assert_eq!(depth as usize, CHAIN_LEN - 1);
}

// ---------------------------------------------------------------------------------------
// Benchmarks

fn throughput(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let (api, raw) = rt.block_on(async {
        let api: capwire::RpcStub = capwire::connect(&format!("ws://{}/", capwire_server().await))
            .await
            .expect("connect");
        let raw = raw_client(raw_echo_server().await).await;
        (api, Arc::new(tokio::sync::Mutex::new(raw)))
    });

    let mut group = c.benchmark_group("websocket");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(WS_SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("capwire/1_in_flight", |b| {
        let api = api.clone();
        b.to_async(rt).iter_custom(timed("capwire/1", move |iters| {
            capwire_serial(api.clone(), iters)
        }))
    });
    group.bench_function("capwire/64_in_flight", |b| {
        let api = api.clone();
        b.to_async(rt)
            .iter_custom(timed("capwire/64", move |iters| {
                capwire_windowed(api.clone(), iters, WINDOW)
            }))
    });
    group.finish();

    let mut group = c.benchmark_group("raw_websocket");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(WS_SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("echo/1_in_flight", |b| {
        let raw = raw.clone();
        b.to_async(rt)
            .iter_custom(timed("raw/1", move |iters| raw_serial(raw.clone(), iters)))
    });
    group.bench_function("echo/64_in_flight", |b| {
        let raw = raw.clone();
        b.to_async(rt).iter_custom(timed("raw/64", move |iters| {
            raw_windowed(raw.clone(), iters, WINDOW)
        }))
    });
    group.finish();
}

/// Runs `chain` `iters` times in a row.
async fn chains_of<F, Fut>(root: RpcStub, iters: u64, chain: F) -> Duration
where
    F: Fn(RpcStub) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..iters {
        chain(root.clone()).await;
    }
    start.elapsed()
}

fn chains(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let (root, _server) = rt.block_on(async {
        let (client_end, server_end) = memory::channel(ONE_WAY);
        let server = Session::start(
            server_end,
            Some(RpcStub::new(Node { depth: 0 })),
            Default::default(),
        );
        let client = Session::start(client_end, None, Default::default());
        (client.main(), server)
    });

    let mut group = c.benchmark_group("chain");
    group
        .sample_size(CHAIN_SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));
    group
        .measurement_time(Duration::from_secs(3))
        .bench_function("1_call", |b| {
            let root = root.clone();
            b.to_async(rt)
                .iter_custom(timed("chain/single", move |iters| {
                    chains_of(root.clone(), iters, single_call)
                }))
        });
    group
        .measurement_time(Duration::from_secs(3))
        .bench_function("10_calls/pipelined", |b| {
            let root = root.clone();
            b.to_async(rt)
                .iter_custom(timed("chain/pipelined", move |iters| {
                    chains_of(root.clone(), iters, chain_pipelined)
                }))
        });
    group
        .measurement_time(Duration::from_secs(5))
        .bench_function("10_calls/sequential", |b| {
            let root = root.clone();
            b.to_async(rt)
                .iter_custom(timed("chain/sequential", move |iters| {
                    chains_of(root.clone(), iters, chain_sequential)
                }))
        });
    group.finish();
}

fn summary() {
    let rate = |name: &str| per_iteration(name, WS_SAMPLES).map(|t| 1.0 / t.as_secs_f64());
    let show = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
    println!();
    println!("summary (mean over the measurement samples)");
    println!(
        "  {:<14} {:>14} {:>14} {:>10}",
        "in flight", "capwire/s", "raw ws/s", "ratio"
    );
    for (label, ours, floor) in [("1", "capwire/1", "raw/1"), ("64", "capwire/64", "raw/64")] {
        let (ours, floor) = (rate(ours), rate(floor));
        let ratio = ours
            .zip(floor)
            .map_or_else(|| "-".to_owned(), |(a, b)| format!("{:.3}", a / b));
        println!(
            "  {label:<14} {:>14} {:>14} {ratio:>10}",
            show(ours),
            show(floor)
        );
    }
    let nominal = 2 * ONE_WAY;
    let single = per_iteration("chain/single", CHAIN_SAMPLES);
    if let Some(t) = single {
        println!(
            "  one call on the {}+{} ms link: {:.2} ms (the measured round trip)",
            ONE_WAY.as_millis(),
            ONE_WAY.as_millis(),
            t.as_secs_f64() * 1e3
        );
    }
    for (label, name) in [
        ("pipelined", "chain/pipelined"),
        ("sequential", "chain/sequential"),
    ] {
        if let Some(t) = per_iteration(name, CHAIN_SAMPLES) {
            let measured = single.map_or_else(
                || "-".to_owned(),
                |s| format!("{:.2}", t.as_secs_f64() / s.as_secs_f64()),
            );
            println!(
                "  chain of {CHAIN_LEN}, {label:<10}: {:>8.2} ms = {:.2} round trips of {} ms, {measured} measured round trips",
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() / nominal.as_secs_f64(),
                nominal.as_millis()
            );
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, &rt);
    chains(&mut c, &rt);
    c.final_summary();
    summary();
}
