//! Crash durability of Durable Objects: a write whose result a caller saw survives a
//! SIGKILL of the process that made it.
//!
//! [`a_result_seen_before_a_sigkill_is_durable`] runs this same test binary again as a
//! child process, selecting [`crash_child`] alone (`--exact`) with [`CHILD_ENV`] set to a
//! data directory. The child increments the counter `alice` in a loop and prints every
//! result on a line of its own. The parent reads those lines until it has seen
//! [`SEEN`] results, kills the child with SIGKILL, reads what was left in the pipe, then
//! opens a host on the same directory in its own process and checks that the counter is
//! at least the last result printed (each result printed was durable) and at most one
//! above it (the child does one increment at a time, and may die between a commit and
//! its print), and that the next increment adds one.
//!
//! What a process kill tests, and what it does not: a SIGKILL loses what the process
//! holds in its own memory, but not what it has handed to the kernel, since the page cache
//! outlives the process. The test therefore catches a result sent before its write is
//! committed to the file (a write-behind buffer, a transaction left open, a commit made
//! later on another task), but not a missing fsync. Both checked by hand when the test was
//! written: with every write left in a transaction that is never committed, it fails (the
//! counter is 0 after the kill, though the child had printed 21); with `synchronous=OFF`
//! and an in-memory journal instead of WAL, it still passes, since the written pages are
//! in the kernel's page cache. The `synchronous=FULL` half of durability needs a
//! power-loss test (a VM, or a block device that drops unsynced writes), out of reach
//! here.

use capwire::durable::{DurableObject, State};
use capwire::host::{Ctx, Entrypoint, Env, Host};
use capwire::{RpcError, entrypoint, rpc_target};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set (to the data directory) in the child's environment only: it makes [`crash_child`]
/// act as the child.
const CHILD_ENV: &str = "CAPWIRE_CRASH_CHILD";
/// What the child's result lines start with (the test harness prints lines of its own).
const PREFIX: &str = "capwire-crash-result ";
/// Results the parent sees before it kills the child.
const SEEN: usize = 20;
/// The bound on the whole test.
const TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Read, then write.
    pub fn increment(&self) -> Result<i64, RpcError> {
        let storage = self.state.storage();
        let n = storage.get::<i64>("n")?.unwrap_or(0) + 1;
        storage.put("n", &n)?;
        Ok(n)
    }

    #[rpc(getter)]
    pub fn value(&self) -> Result<i64, RpcError> {
        Ok(self.state.storage().get::<i64>("n")?.unwrap_or(0))
    }
}

pub struct Api;

impl Entrypoint for Api {
    fn new(_env: Env, _ctx: Ctx) -> Self {
        Api
    }
}

#[entrypoint]
impl Api {
    pub fn ping(&self) -> String {
        "pong".into()
    }
}

const CONFIG: &str = r#"
    [[worker]]
    name = "app"
    main = "Api"
    durable_objects = [{ name = "COUNTER", class_name = "Counter" }]
"#;

fn host(dir: &Path) -> Host {
    Host::builder()
        .entrypoint::<Api>("Api")
        .durable_object::<Counter>("Counter")
        .data_dir(dir)
        .config_str(CONFIG, "workers.toml")
        .expect("the configuration is valid")
}

/// The child's entry point, not a test of its own: without [`CHILD_ENV`] in the
/// environment (any ordinary run of the suite) it does nothing and passes. With it, it
/// increments `alice` in the data directory the variable names and prints each result,
/// flushed, until it is killed (or, should the parent be gone, until stdout is closed or
/// the [`TIMEOUT`] has passed).
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let host = host(Path::new(&dir));
        let alice = host
            .durable_object::<Counter>("app", "COUNTER")
            .expect("the binding exists")
            .get_by_name("alice");
        // Straight to the file descriptor, not through the harness's output capture.
        let mut out = std::io::stdout();
        let start = Instant::now();
        while start.elapsed() < TIMEOUT {
            let n = alice.increment().await.expect("increment");
            if writeln!(out, "{PREFIX}{n}")
                .and_then(|()| out.flush())
                .is_err()
            {
                return; // the parent is gone
            }
        }
    });
}

/// A fresh data directory under the system's temporary directory, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> DataDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "capwire-durable-crash-{}-{nanos}",
            std::process::id()
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

/// The child, killed (and reaped) when dropped, so that a failing parent leaves no
/// process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the reader thread passes on: a result line, or the end of the child's output.
enum Line {
    Result(i64),
    End,
}

#[test]
fn a_result_seen_before_a_sigkill_is_durable() {
    let deadline = Instant::now() + TIMEOUT;
    let dir = DataDir::new();
    let mut child = Killed(
        Command::new(std::env::current_exe().expect("the test binary"))
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child"),
    );

    // Lines are read on a thread of their own, so that the parent can bound its waits.
    let stdout = child.0.stdout.take().expect("the child's stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness writes `test crash_child ... ` before the first result, with no
            // line break. A line cut short by the kill does not parse, and is not a result.
            if let Some(n) = line.split_once(PREFIX).and_then(|(_, n)| n.parse().ok())
                && tx.send(Line::Result(n)).is_err()
            {
                return;
            }
        }
        let _ = tx.send(Line::End);
    });
    let next = |what: &str| {
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left)
            .unwrap_or_else(|e| panic!("{what}: nothing from the child within {TIMEOUT:?}: {e}"))
    };

    let mut seen = Vec::new();
    while seen.len() < SEEN {
        match next("before the kill") {
            Line::Result(n) => seen.push(n),
            Line::End => panic!("the child ended after {} results: {seen:?}", seen.len()),
        }
    }
    let last_seen = *seen.last().unwrap();
    assert_eq!(
        seen,
        (1..=SEEN as i64).collect::<Vec<_>>(),
        "the child starts from an empty directory and counts by one"
    );

    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no exit handler runs.
    child.0.kill().expect("kill the child");
    let status = child.0.wait().expect("reap the child");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    }
    #[cfg(not(unix))]
    assert!(!status.success(), "killed: {status:?}");

    // Results the child printed after the parent stopped looking were seen by a caller
    // too (they are in the pipe): the last of them is the bar.
    let mut last_printed = last_seen;
    while let Line::Result(n) = next("after the kill") {
        last_printed = n;
    }
    reader.join().expect("the reader thread");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let host = host(&dir.0);
        let alice = host
            .durable_object::<Counter>("app", "COUNTER")
            .unwrap()
            .get_by_name("alice");
        let value = tokio::time::timeout(TIMEOUT, alice.value())
            .await
            .expect("the value within the timeout")
            .unwrap();
        assert!(
            value >= last_printed,
            "the counter is {value}, but the child had printed {last_printed} \
             (the parent had seen {last_seen}): a result left before its write was durable"
        );
        assert!(
            value <= last_printed + 1,
            "the counter is {value}, more than one above the last result printed, {last_printed}"
        );
        let after = tokio::time::timeout(TIMEOUT, alice.increment())
            .await
            .expect("the increment within the timeout")
            .unwrap();
        assert_eq!(
            after,
            value + 1,
            "the next increment counts on from the value"
        );
    });
    drop(rt);
}
