// A getter is a property read: it cannot take arguments.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target]
impl Counter {
    #[rpc(getter)]
    pub fn value(&self, scale: i64) -> i64 {
        scale
    }
}

fn main() {}
