//! Lifecycle against capnweb's Node server, from the Rust client: dropping stubs releases
//! (and so disposes) capnweb's targets, `on_broken` fires for a capnweb peer, and a stub
//! forwarded from a capnweb session to a Rust one breaks cleanly when capnweb goes away.

mod support;

use capwire::transport::memory::channel;
use capwire::{RpcError, RpcStub, Session, Value, entrypoint};
use std::sync::Mutex;
use std::time::Duration;

/// Polls `disposedCounters()` (each poll a round trip, so the releases sent before it have
/// been handled) until it reaches `want`; bounded.
async fn disposed_reaches(api: &RpcStub, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = api.call("disposedCounters", ()).await.unwrap().as_f64();
        if n == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "capnweb disposed {n:?} counters, expected {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_stubs_disposes_capnweb_targets() {
    let node = support::NodeServer::start();
    let api: RpcStub = capwire::connect(&node.ws_url()).await.expect("connect");
    let before = api
        .call("disposedCounters", ())
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let mut counters = Vec::new();
    for i in 0..20 {
        let c: RpcStub = api.call("makeCounter", (i,)).typed().await.unwrap();
        let copy = c.clone(); // a dup: still one reference on the wire
        assert_eq!(
            c.call("increment", ()).await.unwrap().as_f64(),
            Some(f64::from(i + 1))
        );
        counters.push((c, copy));
    }
    assert_eq!(
        api.call("disposedCounters", ()).await.unwrap().as_f64(),
        Some(before),
        "nothing is disposed while we hold the stubs"
    );
    drop(counters);
    disposed_reaches(&api, before + 20.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_broken_fires_for_a_capnweb_peer() {
    let node = support::NodeServer::start();
    let session = capwire::connect_with(&node.ws_url(), None, Default::default())
        .await
        .expect("connect");
    let api = session.main();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let tx1 = tx.clone();
    let rejected = api.call("throwError", ()); // kept: a dropped promise is cancelled
    rejected.on_broken(move |e| tx1.send(("rejected", e)).unwrap());
    let (kind, e) = rx.recv().await.unwrap();
    assert_eq!(
        (kind, e.name(), e.message()),
        ("rejected", "RangeError", "test error")
    );

    let counter: RpcStub = api.call("makeCounter", (1,)).typed().await.unwrap();
    counter.on_broken(move |e| tx.send(("gone", e)).unwrap());
    drop(node); // kills the capnweb server
    let (kind, e) = rx.recv().await.unwrap();
    assert_eq!(kind, "gone");
    assert_eq!(e, session.closed().await);
}

/// Keeps a stub beyond the call, and calls it later.
#[derive(Default)]
pub struct Keeper {
    kept: Mutex<Option<RpcStub>>,
}

#[entrypoint]
impl Keeper {
    /// Keeps `stub`.
    pub fn keep(&self, stub: RpcStub) {
        *self.kept.lock().unwrap() = Some(stub);
    }

    /// `kept.increment()`.
    pub async fn increment_kept(&self) -> Result<Value, RpcError> {
        let stub = self.kept.lock().unwrap().clone();
        stub.ok_or_else(|| RpcError::range("nothing kept"))?
            .call("increment", ())
            .await
    }

    /// Lets go of the kept stub.
    pub fn forget(&self) {
        self.kept.lock().unwrap().take();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stub_forwarded_from_capnweb_breaks_cleanly_when_capnweb_goes_away() {
    let node = support::NodeServer::start();
    // We hold a session to capnweb (A) and one to a Rust service (B).
    let to_a = capwire::connect_with(&node.ws_url(), None, Default::default())
        .await
        .expect("connect");
    let (b1, b2) = channel(Duration::ZERO);
    let b_server = Session::start(
        b2,
        Some(RpcStub::new(Keeper::default())),
        Default::default(),
    );
    let to_b = Session::start(b1, None, Default::default());
    let (a, b) = (to_a.main(), to_b.main());
    let baseline = b_server.stats();

    let counter: RpcStub = a.call("makeCounter", (5,)).typed().await.unwrap();
    b.call("keep", (counter.clone(),)).await.unwrap();
    let six = b.call("incrementKept", ()).await.unwrap();
    assert_eq!(
        six.as_f64(),
        Some(6.0),
        "B's call was proxied through us to capnweb"
    );

    drop(node);
    let why = to_a.closed().await;
    let e = b.call("incrementKept", ()).await.unwrap_err();
    assert_eq!(e.message(), why.message(), "B sees why A went away: {e}");

    b.call("forget", ()).await.unwrap();
    drop(counter);
    support::eventually("B released the forwarded stub", || {
        b_server.stats() == baseline
    })
    .await;
    assert_eq!(to_b.stats().exports, 1, "we export nothing to B any more");
}
