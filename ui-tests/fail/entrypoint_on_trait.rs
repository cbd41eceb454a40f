// An entrypoint is an impl block; interfaces are declared with `#[rpc_target]`.
use capwire::entrypoint;

#[entrypoint]
pub trait Api {
    fn ping(&self) -> u32;
}

fn main() {}
