// `crate = "..."` must hold a path.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target(crate = "not a path")]
impl Counter {
    pub fn value(&self) -> i64 {
        0
    }
}

fn main() {}
