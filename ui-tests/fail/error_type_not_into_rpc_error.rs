// The error of a `Result` must convert into `RpcError`; the error should point at the
// return type.
use capwire::rpc_target;

pub struct MyError;

pub struct Parser;

#[rpc_target]
impl Parser {
    pub fn parse(&self, text: String) -> Result<u32, MyError> {
        text.parse().map_err(|_| MyError)
    }
}

fn main() {}
