// `#[entrypoint(...)]` takes the same arguments as `#[rpc_target(...)]`: only `crate`.
use capwire::entrypoint;

pub struct Api;

#[entrypoint(name = "api")]
impl Api {
    pub fn ping(&self) -> u32 {
        0
    }
}

fn main() {}
