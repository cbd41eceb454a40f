// The method checks apply to an interface's declarations as well.
use capwire::rpc_target;

#[rpc_target]
pub trait Counter {
    fn increment(&mut self) -> i64;
}

fn main() {}
