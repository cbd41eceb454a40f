// A generic impl block has no single concrete type to serve.
use capwire::rpc_target;

pub struct Holder<T>(T);

#[rpc_target]
impl<T: Send + Sync + 'static> Holder<T> {
    pub fn ping(&self) -> u32 {
        0
    }
}

fn main() {}
