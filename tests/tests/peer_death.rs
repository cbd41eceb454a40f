//! `on_broken` fires when the peer dies, whatever state the calls are in: a server child
//! process is killed (SIGKILL) 50 times with calls pending, and every callback registered
//! on the client runs, each before any awaiting code can see the session's end.
//!
//! The server is this same test binary, started again with `CAPWIRE_DYING_SERVER` set: it
//! serves the conformance service over WebSocket and prints its port. The client holds
//! calls in several states when the server dies: not yet sent or just sent (odd rounds kill
//! at once), running on the server (even rounds make a round trip first), awaited (sent
//! as a `stream`), pipelined on a pending result, and the main stub itself. Before the fix,
//! a pending call's awaiter was woken before the callbacks ran (its own, and those of the
//! imports after it in the table's order, which is random): code that went on at once
//! (checking a flag, ending the program) saw a callback that had not run.
//!
//! A main stub taken once the session has ended breaks at once too: it used to become a
//! new import of the emptied table, which nothing would ever fail.

use capwire::{RpcPromise, RpcStub};
use futures::FutureExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const SERVER: &str = "CAPWIRE_DYING_SERVER";
const ROUNDS: usize = 50;
/// Un-awaited calls left pending in each round, each with a callback.
const PENDING: usize = 8;
/// A guard against a hang, not a synchronisation: every wait below ends far sooner.
const GUARD: Duration = Duration::from_secs(60);
/// A `delay` that outlives the test.
const FOREVER_MS: f64 = 1e9;

/// The child: serve, print the port, and serve until killed.
fn run_server() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (server, addr) = capwire_examples::conformance::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("dying-server-port {}", addr.port());
        use std::io::Write;
        std::io::stdout().flush().expect("flush");
        let _ = capwire_examples::conformance::run(server).await;
    });
}

/// A child process killed when dropped (a failing test leaves none behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server child and returns it with its port.
fn start_server() -> (Killed, u16) {
    let mut child = Killed(
        Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "on_broken_fires_every_time_a_server_process_dies_with_calls_pending",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVER, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server process"),
    );
    let stdout = child.0.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the server's output");
        // The test harness may have begun the line ("test name ... ").
        if let Some((_, port)) = line.split_once("dying-server-port") {
            return (child, port.trim().parse().expect("a port"));
        }
    }
    panic!("the server ended without printing its port");
}

/// What one round saw.
struct Round {
    /// Callbacks registered.
    registered: usize,
    /// Callbacks that ran before the awaited call rejected.
    before_rejection: usize,
    /// A callback found the session's end visible to awaiting code while callbacks were
    /// still to run.
    seen_early: bool,
}

async fn round(n: usize) -> Round {
    let (mut server, port) = start_server();
    let api: RpcStub = capwire::connect(&format!("ws://127.0.0.1:{port}/"))
        .await
        .expect("connect");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let fired = Arc::new(AtomicUsize::new(0));
    let seen_early = Arc::new(AtomicBool::new(false));
    let mut registered = 0;

    // A pending call pending call, that each callback polls: it must not be seen settled while
    // callbacks remain to run.
    let witness = api.call("delay", (FOREVER_MS, "witness"));
    let total = 1 + PENDING + 1; // the main stub, the pending calls, the pipelined call
    let callback = |what: String| {
        let (tx, fired, seen_early, witness) = (
            tx.clone(),
            fired.clone(),
            seen_early.clone(),
            witness.clone(),
        );
        move |error: capwire::RpcError| {
            let now = fired.fetch_add(1, Ordering::SeqCst) + 1;
            if now < total && witness.now_or_never().is_some() {
                seen_early.store(true, Ordering::SeqCst);
            }
            let _ = tx.send((what, error));
        }
    };

    api.on_broken(callback("the main stub".to_owned()));
    registered += 1;
    let mut pending: Vec<RpcPromise> = Vec::new();
    for i in 0..PENDING {
        let call = api.call("delay", (FOREVER_MS, i));
        call.on_broken(callback(format!("pending call {i}")));
        registered += 1;
        pending.push(call);
    }
    let pipelined = pending[0].call("toUpperCase", ());
    pipelined.on_broken(callback("the pipelined call".to_owned()));
    registered += 1;
    assert_eq!(registered, total);
    drop(witness);

    // The awaited call, made last: once it rejects, awaiting code knows the session
    // ended. Awaited at once by its only holder, it may go as a `stream`.
    let awaited = api.call("delay", (FOREVER_MS, "awaited"));
    let counted = fired.clone();
    let awaiting = tokio::spawn(async move {
        let result = awaited.await;
        (result, counted.load(Ordering::SeqCst))
    });
    if n.is_multiple_of(2) {
        // Every call above has reached the server, which runs them, when this returns.
        let four = api.call("square", (2,)).await.expect("square");
        assert_eq!(four.as_f64(), Some(4.0));
    }

    // SIGKILL: the server gets no chance to say goodbye.
    server.0.kill().expect("kill the server");
    server.0.wait().expect("reap the server");

    let (result, before_rejection) = tokio::time::timeout(GUARD, awaiting)
        .await
        .unwrap_or_else(|_| panic!("round {n}: the awaited call never rejected"))
        .expect("the awaiting task");
    assert!(result.is_err(), "round {n}: the awaited call resolved");
    let mut ran = Vec::new();
    while ran.len() < registered {
        match tokio::time::timeout(GUARD, rx.recv()).await {
            Ok(Some((what, _error))) => ran.push(what),
            _ => panic!(
                "round {n}: only {} of {registered} callbacks ran: {ran:?}",
                ran.len()
            ),
        }
    }
    drop((pending, pipelined, api));
    Round {
        registered,
        before_rejection,
        seen_early: seen_early.load(Ordering::SeqCst),
    }
}

#[test]
fn on_broken_fires_every_time_a_server_process_dies_with_calls_pending() {
    if std::env::var_os(SERVER).is_some() {
        return run_server();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut late = Vec::new();
    for n in 0..ROUNDS {
        let seen = rt.block_on(round(n));
        if seen.before_rejection < seen.registered || seen.seen_early {
            late.push((n, seen.before_rejection, seen.registered, seen.seen_early));
        }
    }
    assert!(
        late.is_empty(),
        "rounds where awaiting code could see the session's end before every on_broken \
         callback ran (round, callbacks run before the rejection, registered, seen early \
         by a callback): {late:?}"
    );
}

#[tokio::test]
async fn on_broken_fires_on_a_main_stub_taken_after_its_session_ended() {
    let (a, b) = capwire::transport::memory::channel(Duration::ZERO);
    let _server = capwire::Session::start(
        b,
        Some(RpcStub::new(capwire_examples::conformance::TestTarget)),
        Default::default(),
    );
    let client = capwire::Session::start(a, None, Default::default());
    client.close();
    let why = client.closed().await;
    let (tx, rx) = std::sync::mpsc::channel();
    let api = client.main();
    api.on_broken(move |e| tx.send(e).unwrap());
    assert_eq!(rx.try_recv().expect("on_broken ran at once"), why);
    assert_eq!(api.call("square", (2,)).await.unwrap_err(), why);
}
