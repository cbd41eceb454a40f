// A remote caller cannot uphold an `unsafe` method's contract.
use capwire::rpc_target;

pub struct Raw;

#[rpc_target]
impl Raw {
    pub unsafe fn poke(&self, addr: u64) -> u64 {
        addr
    }
}

fn main() {}
