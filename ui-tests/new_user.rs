//! The crate a new user writes, run: the runtime under another name in the manifest
//! (`rpc = { package = "capwire", .. }`, no `crate = "..."` anywhere), every warning
//! denied, and a target whose methods are named `get` and `call` like the untyped stub's,
//! served over WebSocket and called through the typed client, on a stub and on an
//! un-awaited promise (pipelined). It compiles, and the calls come back.
#![deny(warnings)]

use rpc::{RpcError, Stub, StubPromise, TypedStub, rpc_target};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// The store's own error.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct NoSuchProcedure {
    /// What was asked for.
    pub name: String,
}

impl std::fmt::Display for NoSuchProcedure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no procedure called {}", self.name)
    }
}

impl std::error::Error for NoSuchProcedure {}

/// A key-value store.
#[derive(Default)]
pub struct Store {
    map: Mutex<HashMap<String, String>>,
}

#[rpc_target]
impl Store {
    /// The value at `key`.
    pub fn get(&self, key: String) -> Option<String> {
        self.map.lock().unwrap().get(&key).cloned()
    }

    /// Stores `value` at `key`.
    pub fn set(&self, key: String, value: String) {
        let _ = self.map.lock().unwrap().insert(key, value);
    }

    /// Calls a procedure by name.
    pub async fn call(&self, name: String, arg: i64) -> Result<i64, NoSuchProcedure> {
        match name.as_str() {
            "double" => Ok(arg * 2),
            _ => Err(NoSuchProcedure { name }),
        }
    }
}

/// The main object: hands out a store.
pub struct Api;

#[rpc_target]
impl Api {
    /// A new, empty store, by reference.
    pub fn open(&self) -> Store {
        Store::default()
    }
}

#[tokio::test]
async fn a_new_users_crate_round_trips_get_and_call() -> Result<(), RpcError> {
    let server = rpc::Server::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", server.local_addr().unwrap());
    tokio::spawn(server.serve(|| Api));
    let api: Stub<Api> = rpc::connect(&url).await?;

    // On an un-awaited promise of a store: `get` and `call` are the store's, pipelined.
    let store: StubPromise<Store> = api.open();
    store.set("a", "1").await?;
    assert_eq!(store.get("a").await?, Some("1".to_owned()));
    assert_eq!(store.call("double", 21).await?, Ok(42));

    // On the stub itself.
    let store: Stub<Store> = store.await?;
    assert_eq!(store.get("b").await?, None);
    assert_eq!(
        store.call("triple", 1).await?,
        Err(NoSuchProcedure {
            name: "triple".to_owned()
        })
    );
    // The untyped stub's own `get` and `call` are one associated function away.
    let raw = TypedStub::raw(&store);
    let a: Option<String> = raw.call("get", ("a",)).typed().await?;
    assert_eq!(a.as_deref(), Some("1"), "the promise's store is the stub's");
    Ok(())
}
