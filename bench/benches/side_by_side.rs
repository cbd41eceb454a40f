//! capwire side by side with tarpc, jsonrpsee and a raw WebSocket echo, on one job:
//! `add(a, b)` over one connection on loopback, client and server on one tokio runtime,
//! every result checked. For each system and each number of calls in flight (1 and 64) it
//! runs `CAPWIRE_BENCH_ROUNDS` rounds (3) of `CAPWIRE_BENCH_SECS` seconds (2) and prints
//! calls per second (min / median / max), the median round's p50 and p99 latency, and the
//! process's CPU time per call; then each system's ratio to tarpc. With Node on the PATH
//! and `tests/node` installed, it also runs `tests/node/bench-calls.mjs`: capnweb Node ↔
//! Node, and Node → this process's capwire server.
//!
//! ```text
//! cargo bench -p capwire-bench --bench side_by_side
//! ```

use capwire::Stub;
use capwire_bench::{Calc, JsonRpcCalcClient, JsonRpcCalcServer};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Call = Arc<dyn Fn(i64, i64) -> Pin<Box<dyn Future<Output = i64> + Send>> + Send + Sync>;

/// One round's measurements.
struct Round {
    calls: u64,
    secs: f64,
    latencies: Vec<Duration>,
    cpu: Duration,
}

impl Round {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.secs
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
    }
}

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Keeps `in_flight` calls going for `secs`, checking every result.
async fn drive(call: &Call, in_flight: usize, secs: Duration) -> Round {
    let timed = |a: i64| {
        let call = call.clone();
        async move {
            let started = Instant::now();
            let sum = call(a, 1).await;
            assert_eq!(sum, a + 1, "a wrong result");
            started.elapsed()
        }
    };
    let mut pending = FuturesUnordered::new();
    let mut next = 0i64;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let deadline = t0 + secs;
    for _ in 0..in_flight {
        pending.push(timed(next));
        next += 1;
    }
    let mut latencies = Vec::with_capacity(1 << 20);
    while let Some(latency) = pending.next().await {
        latencies.push(latency);
        if Instant::now() < deadline {
            pending.push(timed(next));
            next += 1;
        }
    }
    Round {
        calls: latencies.len() as u64,
        secs: t0.elapsed().as_secs_f64(),
        latencies,
        cpu: cpu_time() - cpu0,
    }
}

async fn capwire_call() -> Call {
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(|| Calc));
    let api: Stub<Calc> = capwire::connect(&format!("ws://{addr}/")).await.unwrap();
    Arc::new(move |a, b| {
        let call = api.add(a as f64, b as f64);
        Box::pin(async move { call.await.unwrap() as i64 })
    })
}

async fn tarpc_call() -> Call {
    let client = capwire_bench::tarpc_client(capwire_bench::tarpc_server().await).await;
    Arc::new(move |a, b| {
        let client = client.clone();
        Box::pin(async move { client.add(tarpc::context::current(), a, b).await.unwrap() })
    })
}

async fn jsonrpsee_call() -> Call {
    let server = jsonrpsee::server::Server::builder()
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.start(capwire_bench::JsonRpcServer.into_rpc());
    tokio::spawn(handle.stopped());
    let client = Arc::new(
        jsonrpsee::ws_client::WsClientBuilder::default()
            .max_concurrent_requests(1024)
            .build(format!("ws://{addr}"))
            .await
            .unwrap(),
    );
    Arc::new(move |a, b| {
        let client = client.clone();
        Box::pin(async move { client.add(a, b).await.unwrap() })
    })
}

/// The floor: a WebSocket server echoing each frame, and a client that keeps `in_flight`
/// frames of a call's size (43 bytes) outstanding. Frames come back in order, so a
/// frame's latency is from its send to the next answer's arrival.
async fn raw_echo(in_flight: usize, secs: Duration) -> Round {
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() && ws.send(message).await.is_err() {
                break;
            }
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let frame = r#"["push",["pipeline",0,["add"],[1234,5678]]]"#;
    assert_eq!(frame.len(), 43);
    let mut sent = std::collections::VecDeque::new();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let deadline = t0 + secs;
    let mut latencies = Vec::with_capacity(1 << 20);
    loop {
        while sent.len() < in_flight && Instant::now() < deadline {
            ws.feed(Message::text(frame)).await.unwrap();
            sent.push_back(Instant::now());
        }
        ws.flush().await.unwrap();
        let Some(started) = sent.pop_front() else {
            break;
        };
        let answer = ws.next().await.unwrap().unwrap();
        assert_eq!(answer.to_text().unwrap(), frame);
        latencies.push(started.elapsed());
    }
    Round {
        calls: latencies.len() as u64,
        secs: t0.elapsed().as_secs_f64(),
        latencies,
        cpu: cpu_time() - cpu0,
    }
}

/// One line of the table: a system at one number of calls in flight, over its rounds.
struct Row {
    system: &'static str,
    in_flight: usize,
    rounds: Vec<Round>,
}

impl Row {
    fn rates(&self) -> Vec<f64> {
        let mut rates: Vec<f64> = self.rounds.iter().map(Round::rate).collect();
        rates.sort_by(f64::total_cmp);
        rates
    }

    fn median_rate(&self) -> f64 {
        let rates = self.rates();
        rates[rates.len() / 2]
    }

    fn median_round(&self) -> &Round {
        let median = self.median_rate();
        self.rounds.iter().find(|r| r.rate() == median).unwrap()
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secs = Duration::from_secs(env_number("CAPWIRE_BENCH_SECS", 2));
    let rounds = env_number("CAPWIRE_BENCH_ROUNDS", 3) as usize;
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    // One level only (`CAPWIRE_BENCH_IN_FLIGHT=64`), for a profile of it.
    let levels: Vec<usize> = match std::env::var("CAPWIRE_BENCH_IN_FLIGHT") {
        Ok(n) => vec![n.parse().expect("CAPWIRE_BENCH_IN_FLIGHT is a number")],
        Err(_) => vec![1, 64],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    runtime.block_on(async {
        let systems: Vec<(&'static str, Option<Call>)> = vec![
            ("capwire, WebSocket", Some(capwire_call().await)),
            ("tarpc, bincode over TCP", Some(tarpc_call().await)),
            ("jsonrpsee, WebSocket", Some(jsonrpsee_call().await)),
            ("raw tokio-tungstenite echo, 43-byte frame", None),
        ];
        for (system, call) in &systems {
            if filter
                .as_ref()
                .is_some_and(|f| !system.contains(f.as_str()))
            {
                continue;
            }
            for &in_flight in &levels {
                let mut row = Row {
                    system,
                    in_flight,
                    rounds: Vec::new(),
                };
                // A warm-up round, not counted.
                for round in 0..=rounds {
                    let measured = match call {
                        Some(call) => drive(call, in_flight, secs).await,
                        None => raw_echo(in_flight, secs).await,
                    };
                    if round > 0 {
                        row.rounds.push(measured);
                    }
                }
                eprintln!(
                    "{system}, {in_flight} in flight: {:.1}k calls/s",
                    row.median_rate() / 1e3
                );
                rows.push(row);
            }
        }
    });
    println!(
        "\n| system | in flight | calls/s min / median / max | p50 / p99 µs (median round) | CPU µs per call |"
    );
    println!("|---|---|---|---|---|");
    for row in &rows {
        let rates = row.rates();
        let median = row.median_round();
        println!(
            "| {} | {} | {:.1}k / {:.1}k / {:.1}k | {:.1} / {:.1} | {:.2} |",
            row.system,
            row.in_flight,
            rates[0] / 1e3,
            rates[rates.len() / 2] / 1e3,
            rates[rates.len() - 1] / 1e3,
            median.percentile(0.5).as_secs_f64() * 1e6,
            median.percentile(0.99).as_secs_f64() * 1e6,
            median.cpu.as_secs_f64() * 1e6 / median.calls as f64,
        );
    }
    let tarpc = |in_flight| {
        rows.iter()
            .find(|r| r.system.starts_with("tarpc") && r.in_flight == in_flight)
    };
    println!("\nratios to tarpc (median calls/s; p50 and p99 latency, tarpc's over the system's):");
    for row in &rows {
        if let Some(base) = tarpc(row.in_flight) {
            let (m, b) = (row.median_round(), base.median_round());
            println!(
                "  {} at {} in flight: {:.2}x throughput, {:.2}x p50, {:.2}x p99",
                row.system,
                row.in_flight,
                row.median_rate() / base.median_rate(),
                b.percentile(0.5).as_secs_f64() / m.percentile(0.5).as_secs_f64(),
                b.percentile(0.99).as_secs_f64() / m.percentile(0.99).as_secs_f64(),
            );
        }
    }
    // A filter names Rust systems only; the capnweb rows run without one.
    if filter.is_none() {
        node_rows(&runtime, secs, rounds);
    }
}

/// capnweb in Node: Node ↔ Node, and Node → a capwire server in this process.
fn node_rows(runtime: &tokio::runtime::Runtime, secs: Duration, rounds: usize) {
    let node_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/node");
    if !std::path::Path::new(node_dir)
        .join("node_modules/capnweb")
        .exists()
    {
        println!("\n(capnweb rows left out: run `npm ci` in tests/node first)");
        return;
    }
    let addr = runtime.block_on(async {
        let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(server.serve(|| Calc));
        addr
    });
    let output = std::process::Command::new("node")
        .arg("bench-calls.mjs")
        .arg(format!("ws://{addr}/"))
        .env("CAPWIRE_BENCH_SECS", secs.as_secs().to_string())
        .env("CAPWIRE_BENCH_ROUNDS", rounds.to_string())
        .current_dir(node_dir)
        .output();
    match output {
        Ok(out) if out.status.success() => {
            println!("\ncapnweb 0.12 in Node (tests/node/bench-calls.mjs):");
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        Ok(out) => println!(
            "\nthe Node benchmark failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("\n(capnweb rows left out: node did not start: {e})"),
    }
}
