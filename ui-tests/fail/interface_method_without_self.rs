// Every method of an RPC interface is called on an object: an associated function is
// refused.
use capwire::rpc_target;

#[rpc_target]
pub trait Store {
    fn new() -> Self
    where
        Self: Sized;

    fn len(&self) -> u64;
}

fn main() {}
