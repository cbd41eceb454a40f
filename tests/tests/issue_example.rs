//! The example users write first (the macros issue's, and the README's), exactly: it
//! compiles, and its client round-trips against a Rust server of the same code and against
//! the Node capnweb server.

mod support;

use capwire::prelude::*;

#[derive(Default)]
pub struct Counter {
    n: std::sync::Mutex<i64>,
}

#[rpc_target]
impl Counter {
    /// Adds `amount` (default 1) and returns the new value.
    pub fn increment(&self, amount: Option<i64>) -> i64 {
        let mut n = self.n.lock().unwrap();
        *n += amount.unwrap_or(1);
        *n
    }
    #[rpc(getter)]
    pub fn value(&self) -> i64 {
        *self.n.lock().unwrap()
    }
    #[allow(dead_code)]
    fn audit(&self) { /* private: never reachable */
    }
}

pub struct Api;

#[entrypoint]
impl Api {
    pub fn square(&self, i: f64) -> f64 {
        i * i
    }
    pub async fn make_counter(&self, start: i64) -> Counter {
        Counter {
            n: std::sync::Mutex::new(start),
        }
    }
    pub async fn throw_error(&self) -> Result<(), RpcError> {
        Err(RpcError::range("test error"))
    }
}

/// The client half of the example, run against any peer serving these names.
async fn client(url: &str) -> Result<(), RpcError> {
    let api: Stub<Api> = capwire::connect(url).await?;
    assert_eq!(api.square(4.0).await?, 16.0);
    let counter = api.make_counter(2); // RpcPromise<Counter>, not awaited
    assert_eq!(counter.increment(Some(3)).await?, 5); // pipelined: one round trip
    let counter: Stub<Counter> = counter.await?;
    assert_eq!(counter.value().await?, 5); // a property read on the wire
    let err = api.throw_error().await.unwrap_err();
    assert_eq!((err.name(), err.message()), ("RangeError", "test error"));
    assert!(
        TypedStub::raw(&counter).call("audit", ()).await.is_err(),
        "a private method was reachable"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_round_trips_against_a_rust_server() {
    let server = capwire::Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(|| Api));
    client(&format!("ws://{addr}/")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_round_trips_against_the_capnweb_node_server() {
    let node = support::NodeServer::start();
    client(&node.ws_url()).await.unwrap();
}
