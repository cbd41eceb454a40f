// `&mut self` cannot be an RPC method: calls on one object run concurrently.
use capwire::rpc_target;

pub struct Counter {
    n: i64,
}

#[rpc_target]
impl Counter {
    pub fn increment(&mut self) -> i64 {
        self.n += 1;
        self.n
    }
}

fn main() {}
