//! Flow control bounds memory: 1 GiB moves from a server to a client that reads slowly,
//! over a real WebSocket between two processes, and neither process's peak memory grows
//! by more than [`BOUND_MIB`].
//!
//! The sender is this same test binary, started again as a child process with
//! `CAPWIRE_STREAM_SENDER` set: it serves the conformance service, prints its port, and
//! when its stdin closes prints its own peak memory. Each side reads its peak resident
//! memory (`VmHWM`) from `/proc/self/status`, and the growth over its resident memory
//! before the transfer is what the bound applies to. Without flow control the sender
//! would queue the whole gibibyte (as about 1.4 GB of base64 text) for the slow reader.

use capwire::{ReadableStream, Stub};
use capwire_examples::conformance::TestTarget;
use futures::StreamExt;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const TOTAL: u64 = 1 << 30;
/// How much either side's peak memory may grow during the transfer.
const BOUND_MIB: u64 = 64;
/// The reader's pace: slower than the sender can produce.
const READ_BYTES_PER_SEC: f64 = 64.0 * 1024.0 * 1024.0;
const SENDER: &str = "CAPWIRE_STREAM_SENDER";

/// `(VmRSS, VmHWM)` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The child: serve, report the port, wait for stdin to close, report peak memory.
fn run_sender() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (before, _) = memory_kib();
    let port = rt.block_on(async {
        let (server, addr) = capwire_examples::conformance::bind("127.0.0.1:0")
            .await
            .expect("bind");
        tokio::spawn(capwire_examples::conformance::run(server));
        addr.port()
    });
    println!("sender-port {port}");
    std::io::stdout().flush().expect("flush");
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    let (_, peak) = memory_kib();
    println!("sender-memory {before} {peak}");
    std::io::stdout().flush().expect("flush");
}

#[test]
fn a_slow_reader_keeps_both_sides_memory_bounded_over_a_gibibyte() {
    if std::env::var_os(SENDER).is_some() {
        return run_sender();
    }
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "a_slow_reader_keeps_both_sides_memory_bounded_over_a_gibibyte",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SENDER, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the sender process");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut next_marked = |marker: &str| -> String {
        for line in lines.by_ref() {
            let line = line.expect("read the sender's output");
            // The test harness may have begun the line ("test name ... ").
            if let Some((_, rest)) = line.split_once(marker) {
                return rest.trim().to_owned();
            }
        }
        panic!("the sender ended without printing {marker:?}");
    };
    let port = next_marked("sender-port");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (before, _) = memory_kib();
    let read = rt.block_on(async {
        let api: Stub<TestTarget> = capwire::connect(&format!("ws://127.0.0.1:{port}/"))
            .await
            .expect("connect");
        let stream: ReadableStream = api.read_bytes(TOTAL).await.expect("readBytes");
        read_slowly(stream).await
    });
    assert_eq!(read, TOTAL, "every byte arrived");
    let (_, peak) = memory_kib();

    drop(child.stdin.take()); // tells the sender to report
    let sender = next_marked("sender-memory");
    let _ = child.wait();
    let sender: Vec<u64> = sender
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect();
    let (sender_before, sender_peak) = (sender[0], sender[1]);

    let growth = |before: u64, peak: u64| peak.saturating_sub(before) / 1024;
    eprintln!(
        "reader: {} MiB before, peak {} MiB; sender: {} MiB before, peak {} MiB",
        before / 1024,
        peak / 1024,
        sender_before / 1024,
        sender_peak / 1024
    );
    assert!(
        growth(before, peak) < BOUND_MIB,
        "the reader's peak memory grew by {} MiB",
        growth(before, peak)
    );
    assert!(
        growth(sender_before, sender_peak) < BOUND_MIB,
        "the sender's peak memory grew by {} MiB",
        growth(sender_before, sender_peak)
    );
}

/// Reads the stream at [`READ_BYTES_PER_SEC`], checking the pattern; returns the length.
async fn read_slowly(mut stream: ReadableStream) -> u64 {
    let start = tokio::time::Instant::now();
    let mut at = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a chunk");
        let end = at + chunk.len() as u64;
        assert!(
            chunk == capwire_examples::conformance::pattern(at, end),
            "bytes {at}..{end} differ"
        );
        at = end;
        // A slow consumer: it takes no more than its pace allows.
        let due = start + Duration::from_secs_f64(at as f64 / READ_BYTES_PER_SEC);
        tokio::time::sleep_until(due).await;
    }
    at
}
