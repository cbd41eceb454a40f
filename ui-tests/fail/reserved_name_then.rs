// `then` would make every stub of this object look like a promise to JavaScript.
use capwire::rpc_target;

pub struct Job;

#[rpc_target]
impl Job {
    pub fn then(&self) -> u32 {
        0
    }
}

fn main() {}
