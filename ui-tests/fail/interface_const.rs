// An RPC interface cannot have associated constants.
use capwire::rpc_target;

#[rpc_target]
pub trait Store {
    const LIMIT: u64;

    fn len(&self) -> u64;
}

fn main() {}
