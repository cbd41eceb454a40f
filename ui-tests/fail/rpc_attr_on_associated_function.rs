// `#[rpc]` on a function without `self` is refused: such a function is never reachable.
use capwire::rpc_target;

pub struct Api;

#[rpc_target]
impl Api {
    #[rpc(name = "make")]
    pub fn new() -> Api {
        Api
    }
}

fn main() {}
