//! Attacks on the transport: peers that hold connections, memory or calls without ever
//! finishing what they started. Each is cut off by a limit of `ServerLimits`, and a
//! bystander session on the same server still answers `square(3)` within 500 ms.
//!
//! Sent over raw TCP, raw WebSocket frames and raw HTTP. The tests run one at a time (they
//! read the process's memory and the conformance service's count of live counters).

use capwire::{Limits, RpcStub, ServerLimits};
use capwire_examples::conformance::{Counter, TestTarget};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

const MIB: usize = 1 << 20;

/// One test at a time: memory and live-counter figures are process-wide.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a test on a runtime of its own, alone: the runtime (and every server, session and
/// task of the test) is gone before the next test starts.
fn run(test: impl std::future::Future<Output = ()>) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(test);
    drop(runtime);
}

/// A conformance server with these limits, serving in the background.
async fn start(server_limits: ServerLimits, limits: Limits) -> SocketAddr {
    let server = capwire::Server::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .limits(limits)
        .server_limits(server_limits);
    let addr = server.local_addr().expect("local address");
    tokio::spawn(server.serve(|| TestTarget));
    addr
}

/// Long timeouts everywhere but where a test sets a short one.
fn patient() -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        handshake_timeout: Duration::from_secs(60),
        frame_read_timeout: Duration::from_secs(60),
        idle_timeout: None,
        keepalive_interval: Duration::from_secs(60),
        ..Default::default()
    }
}

/// A WebSocket session on `addr`, made within a generous bound, and its main stub (which
/// keeps the session open: dropping every clone of it ends a client session).
async fn connect(addr: SocketAddr) -> (capwire::Session, RpcStub) {
    let session = timeout(
        Duration::from_secs(10),
        capwire::connect_with(&format!("ws://{addr}/"), None, Limits::default()),
    )
    .await
    .expect("connected within 10 s")
    .expect("connect");
    let main = session.main();
    (session, main)
}

/// The bystander answers `square(3)` within 500 ms.
async fn served(api: &RpcStub) {
    let nine = timeout(Duration::from_millis(500), api.call("square", (3,)))
        .await
        .expect("the bystander was answered within 500 ms")
        .expect("square(3)");
    assert_eq!(nine.as_f64(), Some(9.0));
}

/// A WebSocket upgrade done by hand on a raw TCP connection.
async fn raw_websocket(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET / HTTP/1.1\r\nhost: {addr}\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .expect("send the upgrade");
    // The response head, a byte at a time so as not to read into the frames after it.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = timeout(Duration::from_secs(10), tcp.read(&mut byte))
            .await
            .expect("the upgrade was answered within 10 s")
            .expect("read the upgrade response");
        assert_eq!(
            n,
            1,
            "closed during the upgrade: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// The header of a client frame (masked, with an all-zero key so the payload goes as is).
fn frame_header(first_byte: u8, len: usize) -> Vec<u8> {
    let mut h = vec![first_byte];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=65535 => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// Everything the server sends until it closes the connection, which must happen within
/// `bound`.
async fn until_closed(read: &mut (impl AsyncRead + Unpin), bound: Duration) -> Vec<u8> {
    timeout(bound, async {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = read.read(&mut buf).await {
            all.extend_from_slice(&buf[..n]);
        }
        all
    })
    .await
    .unwrap_or_else(|_| panic!("the server did not close the connection within {bound:?}"))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// This process's resident memory (VmRSS), in bytes, once the allocator has given the
/// system back what is free: what was freed counts as freed, whether or not the allocator
/// would have kept it for later.
fn rss() -> usize {
    trim();
    status_field("VmRSS:")
}

/// Asks glibc's allocator to return free memory to the system (it keeps freed blocks
/// below its mmap threshold in its heaps, so without this RSS says little about leaks).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// The peak of this process's resident memory (VmHWM) since [`reset_peak`], in bytes.
fn peak_rss() -> usize {
    status_field("VmHWM:")
}

fn status_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"));
    kib * 1024
}

fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

/// Waits (checking every 10 ms, up to `bound`) until `cond` holds.
async fn wait_until(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `bytes` zeros in 1 MiB writes; stops quietly when the server closes.
async fn send_zeros(write: &mut (impl tokio::io::AsyncWrite + Unpin), bytes: usize) {
    let chunk = vec![0u8; MIB];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(MIB);
        if write.write_all(&chunk[..n]).await.is_err() {
            return;
        }
        left -= n;
    }
}

#[test]
fn slowloris_headers_and_silent_connections_are_cut_after_the_header_timeout() {
    run(async {
        let header_timeout = Duration::from_millis(300);
        let addr = start(
            ServerLimits {
                header_read_timeout: header_timeout,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        let (_bystander, api) = connect(addr).await;
        served(&api).await;

        let started = Instant::now();
        let mut cut = Vec::new();
        let mut silent = Vec::new();
        for i in 0..40 {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let (mut read, mut write) = tcp.into_split();
            if i % 2 == 0 {
                // Headers a byte every 20 ms, never finished.
                tokio::spawn(async move {
                    let head = format!("POST / HTTP/1.1\r\nhost: {addr}\r\nx-slow: ");
                    for b in head.bytes().chain(std::iter::repeat(b'a')) {
                        if write.write_all(&[b]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
            } else {
                // Nothing at all; the write half stays open.
                silent.push(write);
            }
            cut.push(tokio::spawn(async move {
                until_closed(&mut read, Duration::from_secs(10)).await;
            }));
        }
        served(&api).await;
        for c in cut {
            c.await.expect("each slow or silent connection is closed");
        }
        assert!(
            started.elapsed() >= header_timeout,
            "closed by the header timeout, not at once"
        );
        served(&api).await;
    })
}

#[test]
fn idle_connections_at_the_cap_do_not_stop_a_fresh_client() {
    run(async {
        let cap = 40;
        let addr = start(
            ServerLimits {
                max_connections: cap,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        let (_bystander, api) = connect(addr).await;
        served(&api).await;
        // Fill every other slot with connections that never send a request.
        let mut idle = Vec::new();
        for _ in 1..cap {
            idle.push(TcpStream::connect(addr).await.expect("connect"));
        }
        // A fresh client is served: the oldest idle connection made room.
        let (_fresh, fresh) = connect(addr).await;
        served(&fresh).await;
        until_closed(&mut idle[0], Duration::from_secs(10)).await;
        served(&api).await;
    })
}

#[test]
fn at_the_cap_with_every_connection_in_use_a_new_one_is_refused() {
    run(async {
        let cap = 8;
        let addr = start(
            ServerLimits {
                max_connections: cap,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        let mut sessions = Vec::new();
        for _ in 0..cap {
            let (session, api) = connect(addr).await;
            served(&api).await;
            sessions.push((session, api));
        }
        // Every connection has sent a request: none is evicted, the new one is closed at once.
        let mut refused = TcpStream::connect(addr).await.expect("the kernel accepts");
        let sent = until_closed(&mut refused, Duration::from_secs(10)).await;
        assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));
        for (_, api) in &sessions {
            served(api).await;
        }
        // A slot given back is usable again.
        sessions.pop().expect("one").0.close();
        let again = timeout(Duration::from_secs(10), async {
            loop {
                match capwire::connect_with(&format!("ws://{addr}/"), None, Limits::default()).await
                {
                    Ok(session) => return session,
                    // The closed session's socket may take a moment to go.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        })
        .await
        .expect("a new session once a slot is free");
        served(&again.main()).await;
        drop(again);
    })
}

#[test]
fn a_websocket_frame_trickled_a_byte_at_a_time_is_cut_after_the_frame_read_timeout() {
    run(async {
        let frame_timeout = Duration::from_millis(500);
        let addr = start(
            ServerLimits {
                frame_read_timeout: frame_timeout,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        let (_bystander, api) = connect(addr).await;

        let (mut read, mut write) = raw_websocket(addr).await.into_split();
        let started = Instant::now();
        tokio::spawn(async move {
            // A 1000-byte text frame, a byte every 20 ms (20 s in all).
            let mut frame = frame_header(0x81, 1000);
            frame.extend(std::iter::repeat_n(b' ', 1000));
            for b in frame {
                if write.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        served(&api).await;
        let sent = until_closed(&mut read, Duration::from_secs(10)).await;
        assert!(started.elapsed() >= frame_timeout);
        assert!(
            contains(&sent, "\"abort\"") && contains(&sent, "frame_read_timeout"),
            "{}",
            String::from_utf8_lossy(&sent)
        );
        served(&api).await;
    })
}

#[test]
fn a_big_frame_never_finished_is_cut_and_its_memory_given_back() {
    run(async {
        // Frames past 32 MiB, so that the allocator maps them on their own and gives them
        // back to the system when freed (smaller ones may stay in its heap, and in RSS).
        let limits = Limits {
            max_message_size: 64 * MIB,
            ..Default::default()
        };
        let frame_timeout = Duration::from_secs(2);
        let addr = start(
            ServerLimits {
                frame_read_timeout: frame_timeout,
                ..patient()
            },
            limits,
        )
        .await;
        let (_bystander, api) = connect(addr).await;
        served(&api).await;

        let base = rss();
        reset_peak();
        let (connections, sent_each) = (3, 40 * MIB);
        let mut cut = Vec::new();
        for _ in 0..connections {
            let (mut read, mut write) = raw_websocket(addr).await.into_split();
            tokio::spawn(async move {
                // Just under the limit, and 40 MiB of it sent.
                let header = frame_header(0x81, 64 * MIB - 1024);
                if write.write_all(&header).await.is_ok() {
                    send_zeros(&mut write, sent_each).await;
                }
                // Then nothing, with the connection left open.
                std::future::pending::<()>().await;
                drop(write);
            });
            cut.push(tokio::spawn(async move {
                until_closed(&mut read, Duration::from_secs(30)).await
            }));
        }
        served(&api).await;
        for c in cut {
            let sent = c.await.expect("reader");
            assert!(
                contains(&sent, "frame_read_timeout"),
                "{}",
                String::from_utf8_lossy(&sent)
            );
        }
        let held = peak_rss().saturating_sub(base);
        eprintln!(
            "{connections} partial frames of 40 MiB: {} MiB over the base at the peak",
            held / MIB
        );
        assert!(
            held >= connections * sent_each / 2,
            "the partial frames were held ({} MiB over the base)",
            held / MIB
        );
        // Given back: within 32 MiB of where it started.
        wait_until(
            "the partial frames' memory is given back",
            Duration::from_secs(10),
            // Well under the two bodies' 72 MiB: what the allocator keeps of the peak
            // (seen up to 33 MiB on a loaded machine).
            || rss() <= base + 48 * MIB,
        )
        .await;
        eprintln!(
            "{} MiB over the base after",
            rss().saturating_sub(base) / MIB
        );
        served(&api).await;
    })
}

#[test]
fn a_frame_over_the_message_limit_is_refused_from_its_header_without_being_held() {
    run(async {
        let addr = start(patient(), Limits::default()).await;
        let (_bystander, api) = connect(addr).await;
        served(&api).await;
        let base = rss();
        reset_peak();
        // Eight connections each sending 60 MiB of a 64 MiB frame (over the 32 MiB limit).
        let mut refused = Vec::new();
        for _ in 0..8 {
            let (mut read, mut write) = raw_websocket(addr).await.into_split();
            tokio::spawn(async move {
                if write.write_all(&frame_header(0x81, 64 * MIB)).await.is_ok() {
                    send_zeros(&mut write, 60 * MIB).await;
                }
                std::future::pending::<()>().await;
                drop(write);
            });
            refused.push(tokio::spawn(async move {
                until_closed(&mut read, Duration::from_secs(30)).await
            }));
        }
        served(&api).await;
        for r in refused {
            let sent = r.await.expect("reader");
            assert!(
                contains(&sent, "\"abort\"") && contains(&sent, "max_message_size"),
                "{}",
                String::from_utf8_lossy(&sent)
            );
        }
        let held = peak_rss().saturating_sub(base);
        eprintln!(
            "8 frames over the limit: {} MiB over the base at the peak",
            held / MIB
        );
        assert!(held < 64 * MIB, "{} MiB held", held / MIB);
        served(&api).await;
    })
}

#[test]
fn partial_frames_across_connections_hit_max_memory_and_are_cut() {
    run(async {
        let addr = start(
            ServerLimits {
                max_memory: 64 * MIB,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        let (_bystander, api) = connect(addr).await;
        served(&api).await;

        // Six connections each sending 20 MiB of a 30 MiB frame: 120 MiB would be held, twice
        // the budget. At most three fit; the others are cut.
        let mut readers = futures::stream::FuturesUnordered::new();
        let mut writers = Vec::new();
        for _ in 0..6 {
            let (mut read, mut write) = raw_websocket(addr).await.into_split();
            writers.push(tokio::spawn(async move {
                if write.write_all(&frame_header(0x81, 30 * MIB)).await.is_ok() {
                    send_zeros(&mut write, 20 * MIB).await;
                }
                std::future::pending::<()>().await;
                drop(write);
            }));
            readers.push(async move { until_closed(&mut read, Duration::from_secs(30)).await });
        }
        use futures::StreamExt;
        for _ in 0..3 {
            let sent = readers.next().await.expect("a reader");
            assert!(
                contains(&sent, "\"abort\"") && contains(&sent, "max_memory"),
                "{}",
                String::from_utf8_lossy(&sent)
            );
        }
        served(&api).await;
        for w in writers {
            w.abort();
        }
    })
}

#[test]
fn a_dead_peer_is_closed_after_two_keepalive_intervals() {
    run(async {
        let interval = Duration::from_millis(200);
        let addr = start(
            ServerLimits {
                keepalive_interval: interval,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        // A live client answers pings by itself: it stays.
        let (live, api) = connect(addr).await;
        served(&api).await;

        // A peer that did the upgrade and then sends nothing, not even a pong.
        let mut dead = raw_websocket(addr).await;
        let started = Instant::now();
        let sent = until_closed(&mut dead, Duration::from_secs(10)).await;
        assert!(
            started.elapsed() >= interval * 3 / 2,
            "closed after {:?}",
            started.elapsed()
        );
        assert!(sent.contains(&0x89), "the server pinged the peer");

        // Ten intervals later the live client is still there.
        assert!(
            timeout(interval * 10, live.closed()).await.is_err(),
            "the live client was closed"
        );
        served(&api).await;
    })
}

#[test]
fn idle_timeout_closes_a_session_holding_nothing_but_not_one_holding_a_capability() {
    run(async {
        let idle = Duration::from_millis(300);
        let addr = start(
            ServerLimits {
                idle_timeout: Some(idle),
                ..patient()
            },
            Limits::default(),
        )
        .await;
        // The bystander holds a counter: it is never idle.
        let (holder, api) = connect(addr).await;
        let counter = api.call("makeCounter", (1,));
        assert_eq!(
            counter
                .call("increment", ())
                .await
                .expect("increment")
                .as_f64(),
            Some(2.0)
        );

        let (empty, empty_main) = connect(addr).await;
        served(&empty_main).await;
        let started = Instant::now();
        timeout(Duration::from_secs(10), empty.closed())
            .await
            .expect("the session holding nothing is closed");
        assert!(started.elapsed() >= idle * 3 / 4, "{:?}", started.elapsed());

        assert!(
            timeout(idle * 5, holder.closed()).await.is_err(),
            "the session holding a counter was closed"
        );
        assert_eq!(
            counter
                .call("increment", ())
                .await
                .expect("increment")
                .as_f64(),
            Some(3.0)
        );
        served(&api).await;
    })
}

#[test]
fn an_http_batch_body_that_does_not_arrive_in_time_is_cut() {
    run(async {
        let body_timeout = Duration::from_millis(300);
        let addr = start(
            ServerLimits {
                body_read_timeout: body_timeout,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        let (_bystander, api) = connect(addr).await;
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let started = Instant::now();
        tcp.write_all(
            format!("POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 1000\r\n\r\n[\"push\"")
                .as_bytes(),
        )
        .await
        .expect("send");
        let sent = until_closed(&mut tcp, Duration::from_secs(10)).await;
        assert!(started.elapsed() >= body_timeout);
        assert!(
            sent.starts_with(b"HTTP/1.1 408") && contains(&sent, "body_read_timeout"),
            "{}",
            String::from_utf8_lossy(&sent)
        );
        served(&api).await;
    })
}

#[test]
fn an_http_batch_whose_client_disconnects_is_cancelled_and_its_memory_freed() {
    run(async {
        // Bodies past 32 MiB, so that the allocator maps them on their own and gives them back
        // to the system when freed.
        let limits = Limits {
            max_message_size: 64 * MIB,
            ..Default::default()
        };
        let addr = start(patient(), limits).await;
        let (_bystander, api) = connect(addr).await;
        served(&api).await;

        // Each batch makes a counter and hands it, with 36 MiB of text, to a call that takes a
        // minute; the result is pulled, so the batch waits for it.
        let padding = "x".repeat(36 * MIB);
        let body = format!(
            "[\"push\",[\"pipeline\",0,[\"makeCounter\"],[1]]]\n\
             [\"push\",[\"pipeline\",0,[\"delay\"],[60000,[[[\"pipeline\",1],\"{padding}\"]]]]]\n\
             [\"pull\",2]"
        );
        drop(padding);
        // A first round, so that the allocator's own reserves (the tops of its heaps, which
        // it keeps resident after a free) are part of the base; the second is measured.
        // Memory the cancelled batches kept would come on top of it, round after round.
        cancelled_batches(addr, &body, None).await;
        let base = rss();
        reset_peak();
        cancelled_batches(addr, &body, Some(base)).await;
        // Under the 72 MiB the two cancelled calls held in their arguments: what the
        // allocator keeps of the peak (seen up to 37 MiB on a loaded machine).
        let settled = timeout(Duration::from_secs(30), async {
            while rss() > base + 64 * MIB {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "the batches' memory was not given back: {} MiB over the base",
            rss().saturating_sub(base) / MIB
        );
        eprintln!(
            "{} MiB over the base after",
            rss().saturating_sub(base) / MIB
        );
        served(&api).await;
    })
}

/// Two batches of `body` whose clients disconnect once they are running: their calls are
/// cancelled. With `base`, checks that they were held (the peak memory over it).
async fn cancelled_batches(addr: SocketAddr, body: &str, base: Option<usize>) {
    let batches = 2;
    let live_before = Counter::live();
    let mut clients = Vec::new();
    for _ in 0..batches {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.expect("send the head");
        tcp.write_all(body.as_bytes()).await.expect("send the body");
        clients.push(tcp);
    }
    wait_until("both batches are running", Duration::from_secs(30), || {
        Counter::live() >= live_before + batches
    })
    .await;
    if let Some(base) = base {
        // "Running" is seen once each batch's first call made its counter, which can be
        // before the second line (the 36 MiB one) is read: wait for the memory itself.
        wait_until(
            "the batches' 36 MiB arguments are held",
            Duration::from_secs(30),
            || peak_rss().saturating_sub(base) >= batches as usize * 36 * MIB,
        )
        .await;
        eprintln!(
            "{batches} batches of 36 MiB: {} MiB over the base at the peak",
            peak_rss().saturating_sub(base) / MIB
        );
    }
    // The clients go away before their answers.
    drop(clients);
    wait_until(
        "the batches' calls are cancelled (their counters dropped)",
        Duration::from_secs(10),
        || Counter::live() <= live_before,
    )
    .await;
}

/// A worker's entrypoint for the host test.
pub struct Squarer;

impl capwire::host::Entrypoint for Squarer {
    fn new(_env: capwire::host::Env, _ctx: capwire::host::Ctx) -> Self {
        Squarer
    }
}

#[capwire::entrypoint]
impl Squarer {
    /// `i * i`.
    pub fn square(&self, i: f64) -> f64 {
        i * i
    }
}

#[test]
fn the_host_applies_its_server_limits_and_shuts_down_gracefully() {
    run(async {
        let (header_timeout, interval) = (Duration::from_millis(300), Duration::from_millis(200));
        let host = capwire::host::Host::builder()
            .entrypoint::<Squarer>("Squarer")
            .server_limits(ServerLimits {
                header_read_timeout: header_timeout,
                keepalive_interval: interval,
                ..patient()
            })
            .config_str(
                "[[worker]]\nname = \"squarer\"\nmain = \"Squarer\"\nlisten = \"127.0.0.1:0\"\n",
                "attack.toml",
            )
            .expect("config");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let serving = tokio::spawn(async move {
            host.serve_until(
                async move {
                    let _ = stop_rx.await;
                },
                move |bound| {
                    let _ = addr_tx.send(bound[0].1);
                },
            )
            .await
        });
        let addr = addr_rx.await.expect("bound");
        let (_bystander, api) = connect(addr).await;
        served(&api).await;

        // A connection that sends nothing is cut by the header timeout; a WebSocket peer
        // that answers no ping, after two intervals.
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let mut dead = raw_websocket(addr).await;
        until_closed(&mut silent, Duration::from_secs(10)).await;
        until_closed(&mut dead, Duration::from_secs(10)).await;
        served(&api).await;

        let _ = stop_tx.send(());
        timeout(Duration::from_secs(10), serving)
            .await
            .expect("the host shut down within 10 s")
            .expect("the serving task")
            .expect("serve_until");
    })
}

#[test]
fn an_http_batch_response_the_client_does_not_read_is_cut() {
    run(async {
        let stall = Duration::from_millis(500);
        let addr = start(
            ServerLimits {
                body_read_timeout: stall,
                ..patient()
            },
            Limits::default(),
        )
        .await;
        let (_bystander, api) = connect(addr).await;
        // A 20 MiB answer, far more than the sockets' buffers hold (ours is made small).
        let body = format!(
            "[\"push\",[\"pipeline\",0,[\"echo\"],[\"{}\"]]]\n[\"pull\",1]",
            "x".repeat(20 * MIB)
        );
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .set_recv_buffer_size(16 * 1024)
            .expect("small buffer");
        let mut tcp = socket.connect(addr).await.expect("connect");
        let head = format!(
            "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.expect("send the head");
        tcp.write_all(body.as_bytes()).await.expect("send the body");
        // The attacker's pacing: it reads nothing for four times the limit, then everything.
        tokio::time::sleep(stall * 4).await;
        served(&api).await;
        let got = until_closed(&mut tcp, Duration::from_secs(10)).await;
        let text = String::from_utf8_lossy(&got[..got.len().min(300)]).into_owned();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no content-length in {text}"));
        assert!(length > 20 * MIB, "{text}");
        assert!(
            got.len() < length,
            "the whole answer arrived ({} bytes): the connection was not cut",
            got.len()
        );
        served(&api).await;
    })
}
