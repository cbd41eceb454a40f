// An RPC method borrows its object: `self` by value is refused.
use capwire::rpc_target;

pub struct Token;

#[rpc_target]
impl Token {
    pub fn consume(self) -> bool {
        true
    }
}

fn main() {}
