// A target is shared between concurrent calls: a type that is not `Sync` is refused, at
// the type.
use capwire::rpc_target;
use std::cell::Cell;

pub struct Counter {
    value: Cell<i64>,
}

#[rpc_target]
impl Counter {
    pub fn value(&self) -> i64 {
        self.value.get()
    }
}

fn main() {}
