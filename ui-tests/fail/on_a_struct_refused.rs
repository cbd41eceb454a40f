// `#[rpc_target]` goes on the impl block (or an interface trait), not on the struct.
use capwire::rpc_target;

#[rpc_target]
pub struct Counter {
    pub value: i64,
}

fn main() {}
