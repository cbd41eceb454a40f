// `#[rpc_target(...)]` knows one argument, `crate`.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target(foo)]
impl Counter {
    pub fn value(&self) -> i64 {
        0
    }
}

fn main() {}
