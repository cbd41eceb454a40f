//! Byte-stream throughput over a loopback WebSocket.
//!
//! `cargo bench -p capwire --bench streams` moves [`TOTAL`] (64 MiB) per iteration:
//!
//! - `capwire`: a real [`capwire::Server`] on 127.0.0.1 and a client made by
//!   [`capwire::connect`]. *download*: the server's `download(n, chunk)` returns a
//!   [`ReadableStream`] of `n` bytes in chunks of `chunk` bytes (slices of one preallocated
//!   buffer), which the client reads to the end. *upload*: the client passes a
//!   `ReadableStream` made the same way to `upload(stream)`, which reads it to the end and
//!   returns the count. Chunks of 64 KiB, and of 1 MiB (capwire's largest `stream`
//!   message) to show the per-message cost.
//! - `raw_*`: the floor, measured in the same run: a bare tokio-tungstenite server and
//!   client over loopback (TCP_NODELAY on both ends, frames fed and flushed once at the end,
//!   tungstenite's default buffers) moving the same bytes in 64 KiB pieces, one per frame.
//!   `raw_binary`: binary frames. `raw_text`: text frames holding the base64 of each piece,
//!   encoded once before the run (the transport cost of carrying the payload as text; the
//!   receiver counts the bytes the text stands for without decoding it).
//!   `raw_text_codec`: the same text frames, but the sender encodes every piece and the
//!   receiver decodes every frame into a buffer: the floor for any protocol that carries
//!   bytes as base64 text, as Cap'n Web does.
//!
//! Every case counts the bytes that arrive and asserts the total. Throughput is reported
//! in payload bytes; after criterion's own report, a summary prints MiB/s per case and the
//! capwire/raw ratios (from the measurement samples only, not from the warm-up).

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use capwire::{ReadableStream, RpcError, Stub, entrypoint};
use criterion::{Criterion, SamplingMode, Throughput};
use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Payload bytes moved per iteration.
const TOTAL: u64 = 64 << 20;
/// The usual chunk size (and the raw baseline's frame payload).
const CHUNK: usize = 64 << 10;
/// capwire's largest `stream` message payload.
const BIG_CHUNK: usize = 1 << 20;
/// Samples criterion takes per benchmark (its minimum).
const SAMPLES: usize = 10;

/// One buffer of [`BIG_CHUNK`] bytes that every chunk is a slice of (byte `k` is
/// `k % 251`, so the bytes are not all alike).
fn buffer() -> Bytes {
    (0..BIG_CHUNK).map(|k| (k % 251) as u8).collect()
}

/// `total` bytes as chunks of `chunk` bytes, each a slice of `data` (no copying).
fn chunks(data: Bytes, total: u64, chunk: usize) -> impl Iterator<Item = Bytes> + Send {
    assert!(chunk <= data.len());
    (0..total)
        .step_by(chunk)
        .map(move |at| data.slice(..(total - at).min(chunk as u64) as usize))
}

// ---------------------------------------------------------------------------------------
// The object served

/// Serves streams of bytes and counts the bytes of streams it is given.
struct Bulk {
    data: Bytes,
}

#[entrypoint]
impl Bulk {
    /// `n` bytes in chunks of `chunk` bytes.
    pub fn download(&self, n: u64, chunk: u64) -> ReadableStream {
        let chunks = chunks(self.data.clone(), n, chunk as usize);
        ReadableStream::new(futures::stream::iter(chunks.map(Ok::<_, RpcError>)))
    }

    /// Reads `stream` to the end; returns how many bytes it held.
    pub async fn upload(&self, mut stream: ReadableStream) -> Result<u64, RpcError> {
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            n += chunk?.len() as u64;
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------
// Sample recording, for the summary

/// MiB/s of payload for the benchmark `name`.
fn mib_per_s(name: &str) -> Option<f64> {
    support::per_iteration(name, SAMPLES)
        .map(|t| TOTAL as f64 / t.as_secs_f64() / f64::from(1 << 20))
}

/// Runs `once()` `iters` times as a task, timed and recorded (see [`support::timed`]).
fn timed_each<F, Fut>(
    name: &'static str,
    once: F,
) -> impl FnMut(u64) -> futures::future::BoxFuture<'static, Duration>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    support::timed(name, move |iters| {
        let once = once.clone();
        async move {
            let start = Instant::now();
            for _ in 0..iters {
                once().await;
            }
            start.elapsed()
        }
    })
}

// ---------------------------------------------------------------------------------------
// capwire over WebSocket

async fn capwire_server(data: Bytes) -> SocketAddr {
    let server = capwire::Server::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr().expect("local address");
    tokio::spawn(server.serve(move || Bulk { data: data.clone() }));
    addr
}

async fn capwire_download(api: Stub<Bulk>, chunk: usize) {
    let mut stream = api.download(TOTAL, chunk as u64).await.expect("download");
    let mut got = 0u64;
    while let Some(piece) = stream.next().await {
        got += piece.expect("a chunk").len() as u64;
    }
    assert_eq!(got, TOTAL);
}

async fn capwire_upload(api: Stub<Bulk>, data: Bytes, chunk: usize) {
    let source = futures::stream::iter(chunks(data, TOTAL, chunk).map(Ok::<_, RpcError>));
    let got = api
        .upload(ReadableStream::new(source))
        .await
        .expect("upload");
    assert_eq!(got, TOTAL);
}

// ---------------------------------------------------------------------------------------
// Raw tokio-tungstenite baseline

type RawClient = Arc<tokio::sync::Mutex<WebSocketStream<MaybeTlsStream<TcpStream>>>>;

/// How the raw baseline carries the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Binary frames of the bytes.
    Binary,
    /// Text frames of their base64, encoded once before the run; counted, not decoded.
    Text,
    /// Text frames of their base64, encoded by the sender and decoded by the receiver.
    TextCodec,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Binary => "binary",
            Encoding::Text => "text",
            Encoding::TextCodec => "text_codec",
        }
    }

    fn parse(name: &str) -> Encoding {
        match name {
            "binary" => Encoding::Binary,
            "text" => Encoding::Text,
            "text_codec" => Encoding::TextCodec,
            other => panic!("unknown encoding {other}"),
        }
    }
}

/// The pieces of the payload, ready to send.
#[derive(Clone)]
struct Frames {
    /// One [`CHUNK`] of bytes.
    binary: Bytes,
    /// Its base64.
    text: Utf8Bytes,
}

impl Frames {
    fn new(data: &Bytes) -> Frames {
        let binary = data.slice(..CHUNK);
        let text = Utf8Bytes::from(BASE64.encode(&binary));
        Frames { binary, text }
    }

    /// Feeds [`TOTAL`] bytes into `ws` as frames of `encoding`, then flushes once.
    async fn send<S>(&self, ws: &mut S, encoding: Encoding)
    where
        S: futures::Sink<Message> + Unpin,
        S::Error: std::fmt::Debug,
    {
        for piece in chunks(self.binary.clone(), TOTAL, CHUNK) {
            let frame = match encoding {
                Encoding::Binary => Message::Binary(piece),
                Encoding::Text if piece.len() == CHUNK => Message::Text(self.text.clone()),
                Encoding::Text | Encoding::TextCodec => Message::text(BASE64.encode(&piece)),
            };
            ws.feed(frame).await.expect("send");
        }
        ws.flush().await.expect("flush");
    }
}

/// Counts payload bytes of received frames; `buf` is where base64 is decoded to.
struct Counter {
    encoding: Encoding,
    buf: Vec<u8>,
    bytes: u64,
}

impl Counter {
    fn new(encoding: Encoding) -> Counter {
        Counter {
            encoding,
            buf: vec![0; CHUNK],
            bytes: 0,
        }
    }

    fn take(&mut self, frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) {
        let n = match (self.encoding, frame) {
            (Encoding::Binary, Some(Ok(Message::Binary(b)))) => b.len(),
            (Encoding::Text, Some(Ok(Message::Text(t)))) => {
                let padding = t
                    .as_bytes()
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b'=')
                    .count();
                t.len() / 4 * 3 - padding
            }
            (Encoding::TextCodec, Some(Ok(Message::Text(t)))) => BASE64
                .decode_slice(t.as_bytes(), &mut self.buf)
                .expect("base64"),
            (_, other) => panic!("unexpected frame: {other:?}"),
        };
        self.bytes += n as u64;
    }
}

/// A server that, per request frame `"down <encoding>"`, sends [`TOTAL`] bytes, and per
/// `"up <encoding>"` receives [`TOTAL`] bytes and answers with the count.
async fn raw_server(frames: Frames) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tcp.set_nodelay(true).expect("nodelay");
            let frames = frames.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp)
                    .await
                    .expect("handshake");
                while let Some(Ok(Message::Text(request))) = ws.next().await {
                    let (direction, encoding) = request.split_once(' ').expect("a request");
                    let encoding = Encoding::parse(encoding);
                    if direction == "down" {
                        frames.send(&mut ws, encoding).await;
                    } else {
                        let mut counter = Counter::new(encoding);
                        while counter.bytes < TOTAL {
                            counter.take(ws.next().await);
                        }
                        ws.send(Message::text(counter.bytes.to_string()))
                            .await
                            .expect("send");
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
    Arc::new(tokio::sync::Mutex::new(ws))
}

async fn raw_download(ws: RawClient, encoding: Encoding) {
    let mut ws = ws.lock().await;
    ws.send(Message::text(format!("down {}", encoding.name())))
        .await
        .expect("send");
    let mut counter = Counter::new(encoding);
    while counter.bytes < TOTAL {
        counter.take(ws.next().await);
    }
    assert_eq!(counter.bytes, TOTAL);
}

async fn raw_upload(ws: RawClient, frames: Frames, encoding: Encoding) {
    let mut ws = ws.lock().await;
    ws.feed(Message::text(format!("up {}", encoding.name())))
        .await
        .expect("send");
    frames.send(&mut *ws, encoding).await;
    match ws.next().await {
        Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), TOTAL.to_string()),
        other => panic!("unexpected frame: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Benchmarks

/// The cases, as `(summary name, criterion name)`, in the order they run.
const CAPWIRE_CASES: [(&str, &str); 4] = [
    ("capwire/download/64KiB", "download/64KiB_chunks"),
    ("capwire/upload/64KiB", "upload/64KiB_chunks"),
    ("capwire/download/1MiB", "download/1MiB_chunks"),
    ("capwire/upload/1MiB", "upload/1MiB_chunks"),
];

fn streams(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let data = buffer();
    let frames = Frames::new(&data);
    let (api, raw) = rt.block_on(async {
        let url = format!("ws://{}/", capwire_server(data.clone()).await);
        let api: Stub<Bulk> = capwire::connect(&url).await.expect("connect");
        let raw = raw_client(raw_server(frames.clone()).await).await;
        (api, raw)
    });

    let mut group = c.benchmark_group("capwire");
    group
        .throughput(Throughput::Bytes(TOTAL))
        .sample_size(SAMPLES)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, bench) in CAPWIRE_CASES {
        let chunk = if name.ends_with("1MiB") {
            BIG_CHUNK
        } else {
            CHUNK
        };
        let upload = name.contains("upload");
        group.bench_function(bench, |b| {
            let (api, data) = (api.clone(), data.clone());
            b.to_async(rt).iter_custom(timed_each(name, move || {
                let (api, data) = (api.clone(), data.clone());
                async move {
                    if upload {
                        capwire_upload(api, data, chunk).await;
                    } else {
                        capwire_download(api, chunk).await;
                    }
                }
            }))
        });
    }
    group.finish();

    for encoding in [Encoding::Binary, Encoding::Text, Encoding::TextCodec] {
        let mut group = c.benchmark_group(format!("raw_{}", encoding.name()));
        group
            .throughput(Throughput::Bytes(TOTAL))
            .sample_size(SAMPLES)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2));
        let down: &'static str = format!("raw_{}/download", encoding.name()).leak();
        let up: &'static str = format!("raw_{}/upload", encoding.name()).leak();
        group.bench_function("download/64KiB_frames", |b| {
            let ws = raw.clone();
            b.to_async(rt)
                .iter_custom(timed_each(down, move || raw_download(ws.clone(), encoding)))
        });
        group.bench_function("upload/64KiB_frames", |b| {
            let (ws, frames) = (raw.clone(), frames.clone());
            b.to_async(rt).iter_custom(timed_each(up, move || {
                raw_upload(ws.clone(), frames.clone(), encoding)
            }))
        });
        group.finish();
    }
}

fn summary() {
    let show = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
    let ratio = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .map_or_else(|| "-".to_owned(), |(a, b)| format!("{:.3}", a / b))
    };
    println!();
    println!(
        "summary: MiB/s of payload, {} MiB per iteration (mean over the measurement samples)",
        TOTAL >> 20
    );
    println!("  raw WebSocket, 64 KiB per frame:");
    println!(
        "  {:<10} {:>10} {:>10} {:>12}",
        "", "binary", "text", "text_codec"
    );
    for direction in ["download", "upload"] {
        let rate = |e: &str| show(mib_per_s(&format!("raw_{e}/{direction}")));
        println!(
            "  {direction:<10} {:>10} {:>10} {:>12}",
            rate("binary"),
            rate("text"),
            rate("text_codec")
        );
    }
    println!("  capwire:");
    println!(
        "  {:<24} {:>8} {:>10} {:>10} {:>12}",
        "", "MiB/s", "/ binary", "/ text", "/ text_codec"
    );
    for (name, _) in CAPWIRE_CASES {
        let ours = mib_per_s(name);
        let direction = if name.contains("upload") {
            "upload"
        } else {
            "download"
        };
        let floor = |e: &str| mib_per_s(&format!("raw_{e}/{direction}"));
        println!(
            "  {name:<24} {:>8} {:>10} {:>10} {:>12}",
            show(ours),
            ratio(ours, floor("binary")),
            ratio(ours, floor("text")),
            ratio(ours, floor("text_codec"))
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut c = Criterion::default().configure_from_args();
    streams(&mut c, &rt);
    c.final_summary();
    summary();
}
