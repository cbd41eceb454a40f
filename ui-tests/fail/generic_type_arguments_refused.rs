// An impl for one instantiation of a generic type is refused as well.
use capwire::rpc_target;

pub struct Holder<T>(T);

#[rpc_target]
impl Holder<u32> {
    pub fn ping(&self) -> u32 {
        self.0
    }
}

fn main() {}
