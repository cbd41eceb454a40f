// A typed receiver such as `self: Box<Self>` is refused too: RPC methods take `&self`.
use capwire::rpc_target;

pub struct Token;

#[rpc_target]
impl Token {
    pub fn consume(self: Box<Self>) -> bool {
        true
    }
}

fn main() {}
