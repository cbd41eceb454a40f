//! Memory per idle session and per held stub (capwire, with tarpc's idle connection as
//! the baseline), the peak memory of receiving a million small integers (against the size
//! of the message that carries them), and the in-process service-binding call against a
//! direct async call.
//! Memory is what the process's allocator holds (a counting global allocator), so it
//! covers both ends of each connection; `N` sessions or stubs are opened, the live bytes
//! measured once they are all up, and the difference divided by `N`.
//!
//! ```text
//! cargo bench -p capwire-bench --bench memory
//! ```

use capwire::Stub;
use capwire_bench::{Calc, Counters};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes it holds.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The most `LIVE` has been since [`reset_peak`].
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn reset_peak() {
    PEAK.store(live(), Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Waits until the live bytes stop changing (tasks settling), at most 2 s.
async fn settled() -> isize {
    let mut last = live();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        let now = live();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

const SESSIONS: usize = 1000;
const STUBS: usize = 10_000;
const CALLS: usize = 200_000;

async fn capwire_idle_sessions() -> f64 {
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(|| Calc));
    let url = format!("ws://{addr}/");
    // One session first, so that one-time allocations are not counted.
    let warm: Stub<Calc> = capwire::connect(&url).await.unwrap();
    assert_eq!(warm.add(1.0, 2.0).await.unwrap(), 3.0);
    let before = settled().await;
    let mut held = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let api: Stub<Calc> = capwire::connect(&url).await.unwrap();
        assert_eq!(api.add(1.0, 2.0).await.unwrap(), 3.0);
        held.push(api);
    }
    let after = settled().await;
    (after - before) as f64 / SESSIONS as f64
}

async fn tarpc_idle_connections() -> f64 {
    let addr = capwire_bench::tarpc_server().await;
    let connect = || async {
        let client = capwire_bench::tarpc_client(addr).await;
        assert_eq!(
            client.add(tarpc::context::current(), 1, 2).await.unwrap(),
            3
        );
        client
    };
    let _warm = connect().await;
    let before = settled().await;
    let mut held = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        held.push(connect().await);
    }
    let after = settled().await;
    (after - before) as f64 / SESSIONS as f64
}

async fn capwire_held_stubs() -> f64 {
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(|| Counters));
    let api: Stub<Counters> = capwire::connect(&format!("ws://{addr}/")).await.unwrap();
    let first = api.make().await.unwrap();
    assert_eq!(first.add(2).await.unwrap(), 2);
    let before = settled().await;
    let mut held = Vec::with_capacity(STUBS);
    for _ in 0..STUBS {
        let counter = api.make().await.unwrap();
        held.push(counter);
    }
    // Every stub is live: a call on the last one reaches its counter.
    assert_eq!(held[STUBS - 1].add(5).await.unwrap(), 5);
    let after = settled().await;
    (after - before) as f64 / STUBS as f64
}

const ELEMENTS: usize = 1_000_000;

/// Peak heap per element while a capwire server receives an array of `ELEMENTS` small
/// integers (`i % 1000`) as a call's argument and answers, and the encoded message's
/// bytes per element. The caller is a raw WebSocket client that sends prepared text, so
/// the peak is the server's, plus the client's write and read buffers (about one message).
async fn capwire_received_array() -> (f64, f64) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(|| Calc));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let numbers: Vec<String> = (0..ELEMENTS).map(|i| (i % 1000).to_string()).collect();
    let expected: i64 = (0..ELEMENTS as i64).map(|i| i % 1000).sum();
    let call = |n: usize| {
        format!(
            r#"["push",["pipeline",0,["count"],[[[{}]]]]]"#,
            numbers[..n].join(",")
        )
    };
    let mut id = 0;
    let mut exchange = async |text: String| {
        id += 1;
        ws.send(Message::text(text)).await.unwrap();
        ws.send(Message::text(format!(r#"["pull",{id}]"#)))
            .await
            .unwrap();
        let answer = ws.next().await.unwrap().unwrap().into_text().unwrap();
        let release = format!(r#"["release",{id},1]"#);
        ws.send(Message::text(release)).await.unwrap();
        answer.to_string()
    };
    // A small call first, so that one-time allocations are not counted.
    assert_eq!(exchange(call(3)).await, r#"["resolve",1,[[3,3]]]"#);
    let text = call(ELEMENTS);
    let size = text.len();
    let before = settled().await;
    reset_peak();
    let answer = exchange(text).await;
    assert_eq!(
        answer,
        format!(r#"["resolve",2,[[{ELEMENTS},{expected}]]]"#)
    );
    let peak = PEAK.load(Ordering::Relaxed);
    (
        (peak - before) as f64 / ELEMENTS as f64,
        size as f64 / ELEMENTS as f64,
    )
}

/// Peak heap per element of the server's steps alone, for the same array: reading the
/// message (`Message::parse`), and reading plus evaluating it into a `Value`
/// (`capwire::deserialize`, the same reader and evaluator without a session).
fn array_steps() -> (f64, f64) {
    let numbers: Vec<String> = (0..ELEMENTS).map(|i| (i % 1000).to_string()).collect();
    let message = format!(r#"["resolve",1,[[{}]]]"#, numbers.join(","));
    let value = format!("[[{}]]", numbers.join(","));
    let limits = capwire::Limits::default();
    let before = live();
    reset_peak();
    let parsed = capwire::wire::Message::parse(&message, &limits).unwrap();
    let parse_peak = PEAK.load(Ordering::Relaxed) - before;
    drop(parsed);
    let before = live();
    reset_peak();
    let evaluated = capwire::deserialize(&value).unwrap();
    assert_eq!(evaluated.as_array().map(<[_]>::len), Some(ELEMENTS));
    let evaluate_peak = PEAK.load(Ordering::Relaxed) - before;
    (
        parse_peak as f64 / ELEMENTS as f64,
        evaluate_peak as f64 / ELEMENTS as f64,
    )
}

/// Calls per second of `call`, `CALLS` of them one after another.
async fn rate<F, Fut>(mut call: F) -> f64
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let t0 = Instant::now();
    for i in 0..CALLS as i64 {
        assert_eq!(call(i).await, i + 1);
    }
    CALLS as f64 / t0.elapsed().as_secs_f64()
}

#[inline(never)]
async fn direct_add(a: i64, b: i64) -> i64 {
    std::hint::black_box(a + b)
}

async fn binding_against_direct() -> (f64, f64) {
    let host = capwire::host::Host::builder()
        .entrypoint::<Calc>("Calc")
        .config_str(
            "[[worker]]\nname = \"calc\"\nmain = \"Calc\"",
            "workers.toml",
        )
        .unwrap();
    let calc: Stub<Calc> = host.service("calc", None).unwrap();
    let binding = rate(|i| {
        let call = calc.add(i as f64, 1.0);
        async move { call.await.unwrap() as i64 }
    })
    .await;
    let direct = rate(|i| direct_add(i, 1)).await;
    (binding, direct)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let capwire_session = capwire_idle_sessions().await;
        let tarpc_connection = tarpc_idle_connections().await;
        let stub = capwire_held_stubs().await;
        let (binding, direct) = binding_against_direct().await;
        let (array_peak, array_encoded) = capwire_received_array().await;
        let (parse_peak, evaluate_peak) = array_steps();
        println!("| measure | capwire | baseline | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| heap per idle session, both ends ({SESSIONS} sessions) | {:.0} B | tarpc connection: {:.0} B | {:.2}x |",
            capwire_session,
            tarpc_connection,
            capwire_session / tarpc_connection
        );
        println!(
            "| heap per held stub, both ends ({STUBS} stubs on one session) | {stub:.0} B | – | – |"
        );
        println!(
            "| peak heap per element receiving {ELEMENTS} small integers | {array_peak:.1} B | encoded message: {array_encoded:.2} B | {:.1}x |",
            array_peak / array_encoded
        );
        println!(
            "| of which reading the message (`Message::parse`) | {parse_peak:.1} B | – | – |"
        );
        println!(
            "| of which reading and evaluating it into a `Value` (`capwire::deserialize`) | {evaluate_peak:.1} B | – | – |"
        );
        println!(
            "| in-process binding call, 1 in flight ({CALLS} calls) | {:.0} calls/s ({:.2} µs) | direct async call: {:.0} calls/s ({:.3} µs) | {:.0}x slower |",
            binding,
            1e6 / binding,
            direct,
            1e6 / direct,
            direct / binding
        );
    });
}
