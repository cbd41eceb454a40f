//! No leaks: 10,000 calls that pass callbacks, targets and forwarded stubs between three
//! sessions, then everything is dropped: every table is back at its baseline, and every
//! target's dispose hook (`Drop`) ran exactly once.

mod support;

use capwire::TypedStub;
use capwire::transport::memory::channel;
use capwire::{Function, RpcError, RpcStub, Session, SessionStats, Stub, entrypoint, rpc_target};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::eventually;

/// Every target made, by ID, and how many times each was disposed.
#[derive(Default)]
struct Ledger {
    next: AtomicU64,
    disposed: Mutex<HashMap<u64, usize>>,
}

impl Ledger {
    fn make(self: &Arc<Self>) -> Item {
        Item {
            id: self.next.fetch_add(1, Ordering::SeqCst),
            ledger: self.clone(),
        }
    }

    fn made(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// IDs disposed other than exactly once, and how many were disposed at all.
    fn audit(&self) -> (Vec<(u64, usize)>, usize) {
        let disposed = self.disposed.lock().unwrap();
        let wrong = (0..self.made())
            .map(|id| (id, disposed.get(&id).copied().unwrap_or(0)))
            .filter(|(_, n)| *n != 1)
            .collect();
        (wrong, disposed.len())
    }
}

pub struct Item {
    id: u64,
    ledger: Arc<Ledger>,
}

impl Drop for Item {
    fn drop(&mut self) {
        *self
            .ledger
            .disposed
            .lock()
            .unwrap()
            .entry(self.id)
            .or_default() += 1;
    }
}

#[rpc_target]
impl Item {
    /// Its ID.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The main object of both servers.
pub struct Service {
    ledger: Arc<Ledger>,
}

#[entrypoint]
impl Service {
    /// A new item, by reference.
    pub fn make(&self) -> Item {
        self.ledger.make()
    }

    /// Calls `f(x)`.
    pub async fn call_back(&self, f: Function<(u64,), u64>, x: u64) -> Result<u64, RpcError> {
        f.call((x,)).await
    }

    /// Reads the ID of an item that may live anywhere (here, at the caller, or forwarded).
    pub async fn read(&self, item: Stub<Item>) -> Result<u64, RpcError> {
        item.id().await
    }

    /// The same stub, back.
    pub fn echo(&self, item: Stub<Item>) -> Stub<Item> {
        item
    }
}

struct Sessions {
    a_server: Session,
    to_a: Session,
    to_b: Session,
    b_server: Session,
}

impl Sessions {
    fn stats(&self) -> [SessionStats; 4] {
        [
            self.a_server.stats(),
            self.to_a.stats(),
            self.to_b.stats(),
            self.b_server.stats(),
        ]
    }
}

/// One round: six calls that pass a callback, make a target and pass it back and forth,
/// forward a stub from A to B, and pass one of the holder's own targets to B.
async fn round(a: &Stub<Service>, b: &Stub<Service>, mine: &Arc<Ledger>, n: u64) {
    let f = Function::new(move |x: u64| x + n);
    assert_eq!(a.call_back(f, 1).await.unwrap(), n + 1);
    let from_a = a.make().await.unwrap();
    let id = from_a.id().await.unwrap();
    assert_eq!(a.read(from_a.clone()).await.unwrap(), id, "came home to A");
    assert_eq!(b.read(from_a.clone()).await.unwrap(), id, "forwarded to B");
    let local = TypedStub::local(mine.make());
    let local_id = local.id().await.unwrap();
    let back = b.echo(local.clone()).await.unwrap();
    assert!(
        TypedStub::raw(&back).same_target(TypedStub::raw(&local)),
        "came home to the holder"
    );
    assert_eq!(b.read(local).await.unwrap(), local_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_leave_every_table_at_its_baseline() {
    let (a1, a2) = channel(Duration::ZERO);
    let (b1, b2) = channel(Duration::ZERO);
    let (a_ledger, b_ledger, mine) = (
        Arc::new(Ledger::default()),
        Arc::new(Ledger::default()),
        Arc::new(Ledger::default()),
    );
    let serve = |ledger: &Arc<Ledger>| {
        Some(RpcStub::new(Service {
            ledger: ledger.clone(),
        }))
    };
    let s = Sessions {
        a_server: Session::start(a2, serve(&a_ledger), Default::default()),
        to_a: Session::start(a1, None, Default::default()),
        to_b: Session::start(b1, None, Default::default()),
        b_server: Session::start(b2, serve(&b_ledger), Default::default()),
    };
    let a: Stub<Service> = TypedStub::from_raw(s.to_a.main());
    let b: Stub<Service> = TypedStub::from_raw(s.to_b.main());
    let baseline = s.stats();

    // Calls that cross a session per round: call_back and its callback, make, id, read
    // on A, read on B (two hops: B to the holder to A), echo, and read of the holder's
    // target on B (B to the holder): eleven. Counted as ten, so at least 10,000 in all.
    const CALLS_PER_ROUND: u64 = 10;
    const ROUNDS: u64 = 10_000 / CALLS_PER_ROUND;
    const CONCURRENT: u64 = 50;
    for batch in 0..ROUNDS / CONCURRENT {
        let rounds = (0..CONCURRENT).map(|k| round(&a, &b, &mine, batch * CONCURRENT + k));
        futures::future::join_all(rounds).await;
    }

    eventually("every table is back at its baseline", || {
        s.stats() == baseline
    })
    .await;
    assert_eq!(a_ledger.made(), ROUNDS, "one target made on A per round");
    assert_eq!(mine.made(), ROUNDS, "one target of the holder's per round");
    for (who, ledger) in [("A", &a_ledger), ("holder", &mine)] {
        eventually(&format!("{who}'s targets are disposed"), || {
            ledger.audit().1 as u64 == ledger.made()
        })
        .await;
        let (wrong, _) = ledger.audit();
        assert!(
            wrong.is_empty(),
            "{who}: disposed other than once: {wrong:?}"
        );
    }
    assert_eq!(b_ledger.made(), 0);
    assert_eq!(baseline[0].exports, 1, "A exports only its main object");
    assert_eq!(
        baseline[1].imports, 1,
        "the holder imports only A's main object"
    );
}
