// A misspelt `#[rpc(...)]` argument is an error, not silently ignored.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target]
impl Counter {
    #[rpc(gettr)]
    pub fn value(&self) -> i64 {
        0
    }
}

fn main() {}
