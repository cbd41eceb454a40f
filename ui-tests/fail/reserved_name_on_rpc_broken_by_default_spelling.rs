// The check applies to the wire spelling: `on_rpc_broken` becomes `onRpcBroken`, which
// capnweb's stubs answer themselves.
use capwire::rpc_target;

pub struct Watcher;

#[rpc_target]
impl Watcher {
    pub fn on_rpc_broken(&self) {}
}

fn main() {}
