// One error in an impl block, and nothing more: the type still implements `RpcTarget`,
// `RpcObject` and `Remote`, and its client still has the methods without errors, so uses
// of it elsewhere (a `Stub<Broken>`, a call on it, a method of another target returning
// one, `TypedStub::local`) add no errors of their own.
use capwire::TypedStub;
use capwire::{RpcError, Stub, rpc_target};

pub struct Broken;

#[rpc_target]
impl Broken {
    pub fn fine(&self) -> u32 {
        1
    }

    pub fn broken(&mut self) {}
}

pub struct Factory;

#[rpc_target]
impl Factory {
    pub fn make(&self) -> Broken {
        Broken
    }

    pub async fn take(&self, b: Stub<Broken>) -> Result<u32, RpcError> {
        b.fine().await
    }
}

fn main() {
    let _local: Stub<Broken> = TypedStub::local(Broken);
}
