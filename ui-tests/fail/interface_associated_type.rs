// An RPC interface cannot have associated types: a remote caller could not name them.
use capwire::rpc_target;

#[rpc_target]
pub trait Store {
    type Key;

    fn len(&self) -> u64;
}

fn main() {}
