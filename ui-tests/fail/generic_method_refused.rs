// The wire carries no type parameters: generic methods are refused.
use capwire::rpc_target;

pub struct Echo;

#[rpc_target]
impl Echo {
    pub fn echo<T: serde::Serialize>(&self, value: T) -> T {
        value
    }
}

fn main() {}
