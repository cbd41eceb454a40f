// Hygiene: the expansion names everything by absolute path, so it compiles in a crate
// without the implicit prelude.
#![no_implicit_prelude]

extern crate capwire;
extern crate std;

use capwire::TypedStub;
use capwire::{RpcError, Stub, entrypoint, rpc_target};
use std::borrow::ToOwned;
use std::result::Result::{self, Ok};
use std::string::String;

pub struct Counter;

#[rpc_target]
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

#[rpc_target]
pub trait Named {
    fn name(&self) -> String;
    async fn later(&self) -> i64;
}

#[rpc_target]
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

#[entrypoint]
impl Main {
    pub fn counter(&self) -> Counter {
        Counter
    }

    pub fn label(&self) -> Label {
        Label
    }
}

fn main() {
    let _main: Stub<Main> = TypedStub::local(Main);
}
