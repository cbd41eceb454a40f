// A generic trait cannot be an RPC interface.
use capwire::rpc_target;

#[rpc_target]
pub trait Store<K> {
    fn len(&self) -> u64;
}

fn main() {}
