// `crate = ...` takes a string literal holding a path.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target(crate = capwire)]
impl Counter {
    pub fn value(&self) -> i64 {
        0
    }
}

fn main() {}
