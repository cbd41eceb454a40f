//! The macros' expansion is clean under `clippy::pedantic`: `.ci/run` lints this file with
//! `-D clippy::pedantic`, and its own code is written to pass, so any lint is the
//! expansion's. (The test below only proves the targets work.)
#![deny(clippy::pedantic)]

use capwire::TypedStub;
use capwire::{RpcError, Stub, Value, entrypoint, rpc_target};

/// A counter.
#[derive(Default)]
pub struct Tally {
    n: std::sync::atomic::AtomicI64,
}

#[rpc_target]
impl Tally {
    /// Adds `by` (default 1).
    pub fn add(&self, by: Option<i64>) -> i64 {
        self.n
            .fetch_add(by.unwrap_or(1), std::sync::atomic::Ordering::SeqCst)
            + by.unwrap_or(1)
    }

    /// The total.
    #[rpc(getter)]
    pub fn total(&self) -> i64 {
        self.n.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The service.
pub struct Service;

#[entrypoint]
impl Service {
    /// A new tally, by reference.
    pub async fn tally(&self) -> Tally {
        tokio::task::yield_now().await;
        Tally::default()
    }

    /// Fails.
    ///
    /// # Errors
    ///
    /// Always.
    pub fn fail(&self, why: String) -> Result<Value, RpcError> {
        Err(RpcError::type_error(why))
    }
}

/// An interface.
#[rpc_target]
pub trait Named {
    /// The name.
    async fn name(&self) -> String;
}

/// Something with a name.
pub struct Thing;

#[rpc_target]
impl Named for Thing {
    async fn name(&self) -> String {
        String::from("thing")
    }
}

#[tokio::test]
async fn the_pedantic_targets_work() {
    let service: Stub<Service> = TypedStub::local(Service);
    let tally = service.tally();
    assert_eq!(tally.add(Some(2)).await.unwrap(), 2);
    assert_eq!(tally.total().await.unwrap(), 2);
    assert_eq!(service.fail("no").await.unwrap_err().message(), "no");
    let named: Stub<dyn Named> = TypedStub::local(Thing);
    assert_eq!(named.name().await.unwrap(), "thing");
}
