// The same argument twice in one `#[rpc(...)]` is refused, not silently overridden.
use capwire::rpc_target;

pub struct Api;

#[rpc_target]
impl Api {
    #[rpc(name = "a", name = "b")]
    pub fn renamed(&self) -> u32 {
        1
    }
}

fn main() {}
