// A function pointer cannot cross the wire.
use capwire::rpc_target;

pub struct Runner;

#[rpc_target]
impl Runner {
    pub fn run(&self, f: fn() -> u32) -> u32 {
        f()
    }
}

fn main() {}
