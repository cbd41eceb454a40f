// A crate as a new user writes it: the runtime under another name in the manifest (`rpc`,
// with no `crate = "..."`), every warning denied, and methods named like the stub's own
// (`get`, `call`), called through the typed client.
#![deny(warnings)]

use rpc::TypedStub;
use rpc::{RpcError, Stub, rpc_target};
use std::collections::HashMap;
use std::sync::Mutex;

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
    pub async fn call(&self, name: String, arg: i64) -> Result<i64, RpcError> {
        match name.as_str() {
            "double" => Ok(arg * 2),
            _ => Err(RpcError::type_error("no such procedure")),
        }
    }
}

async fn round_trip(store: Stub<Store>) -> Result<(), RpcError> {
    store.set("a", String::from("1")).await?;
    let _a: Option<String> = store.get("a").await?;
    let _four: i64 = store.call("double", 2).await?;
    Ok(())
}

fn main() {
    let _round_trip = round_trip(TypedStub::local(Store::default()));
}
