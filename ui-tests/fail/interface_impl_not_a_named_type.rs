// An interface implemented for a type without a name (here a tuple) is refused.
use capwire::rpc_target;

#[rpc_target]
pub trait Pair {
    fn sum(&self) -> u32;
}

#[rpc_target]
impl Pair for (u32, u32) {
    fn sum(&self) -> u32 {
        self.0 + self.1
    }
}

fn main() {}
