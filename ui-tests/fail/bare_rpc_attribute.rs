// `#[rpc]` alone says nothing: it needs arguments.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target]
impl Counter {
    #[rpc]
    pub fn value(&self) -> i64 {
        0
    }
}

fn main() {}
