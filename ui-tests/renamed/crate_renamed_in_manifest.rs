// A renamed dependency works without `crate = "..."`: the manifest has
// `rpc = { package = "capwire", .. }` and no `capwire`, and the macros find the name `rpc`
// there. An expansion naming `::capwire` would fail to resolve.

use rpc::TypedStub;
use rpc::{RpcError, Stub, entrypoint, rpc_target};

pub struct Counter;

#[rpc_target]
impl Counter {
    pub fn add(&self, by: i64) -> i64 {
        by
    }

    #[rpc(getter)]
    pub fn name(&self) -> String {
        "counter".to_owned()
    }

    pub async fn later(&self) -> Result<i64, RpcError> {
        Ok(2)
    }
}

#[rpc_target]
pub trait Named {
    fn name(&self) -> String;
    async fn later(&self) -> i64;
}

pub struct Label;

#[rpc_target]
impl Named for Label {
    fn name(&self) -> String {
        "named".to_owned()
    }
    async fn later(&self) -> i64 {
        3
    }
}

pub struct Main;

#[entrypoint]
impl Main {
    pub fn counter(&self) -> Counter {
        Counter
    }

    pub fn named(&self, n: Stub<dyn Named>) -> Stub<dyn Named> {
        n
    }
}

fn main() {
    let main: Stub<Main> = TypedStub::local(Main);
    let _counter = main.counter().add(1);
    let _label: Stub<Label> = TypedStub::local(Label);
}
