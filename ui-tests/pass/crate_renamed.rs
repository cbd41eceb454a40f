// Hygiene: with `crate = "..."`, the generated code reaches the runtime through the given
// path only. The runtime is brought in under another name, `capwire_renamed`, and the name
// `capwire` is taken by an unrelated crate (`core`), in the extern prelude as well: any
// stray `::capwire::…` or `capwire::…` in the expansion would fail to resolve.
//
// (Cargo cannot rename the same package twice in one manifest, and the tests crate already
// depends on `capwire` under its own name, so the rename is done with `extern crate`.)
extern crate capwire as capwire_renamed;
extern crate core as capwire;

use capwire_renamed::TypedStub;
use capwire_renamed::{RpcError, Stub, entrypoint, rpc_target};

pub struct Counter;

#[rpc_target(crate = "capwire_renamed")]
impl Counter {
    pub fn value(&self) -> i64 {
        1
    }

    #[rpc(getter)]
    pub fn name(&self) -> String {
        "counter".to_owned()
    }

    pub async fn later(&self) -> Result<i64, RpcError> {
        Ok(2)
    }
}

#[rpc_target(crate = "::capwire_renamed")]
pub trait Named {
    fn name(&self) -> String;
    async fn later(&self) -> i64;
}

#[rpc_target(crate = "::capwire_renamed")]
impl Named for Label {
    fn name(&self) -> String {
        "named".to_owned()
    }
    async fn later(&self) -> i64 {
        3
    }
}

pub struct Label;

pub struct Main;

#[entrypoint(crate = "capwire_renamed")]
impl Main {
    pub fn counter(&self) -> Counter {
        Counter
    }

    pub fn label(&self) -> Label {
        Label
    }

    pub fn named(&self, n: Stub<dyn Named>) -> Stub<dyn Named> {
        n
    }
}

fn main() {
    let _main: Stub<Main> = TypedStub::local(Main);
}

/// A framework that re-exports the runtime from one of its modules: `crate = "..."` may
/// name any path to it.
mod facade {
    pub use capwire_renamed::*;
}

pub struct Behind;

#[rpc_target(crate = "crate::facade")]
impl Behind {
    pub fn value(&self) -> i64 {
        4
    }

    pub fn counter(&self) -> Counter {
        Counter
    }
}

fn _uses_facade() -> Stub<Behind> {
    TypedStub::local(Behind)
}
