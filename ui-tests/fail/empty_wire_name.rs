// `#[rpc(name = "")]`: a method needs a name on the wire.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target]
impl Counter {
    #[rpc(name = "")]
    pub fn value(&self) -> i64 {
        0
    }
}

fn main() {}
