// Only `pub` methods are reachable over RPC: `#[rpc]` on a private one is a mistake.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target]
impl Counter {
    #[rpc(getter)]
    fn value(&self) -> i64 {
        0
    }
}

fn main() {
    let _ = Counter.value();
}
