// The error of a `Result` must be `RpcError` (or `io::Error`) or a type that travels as
// itself (serde and `std::error::Error`): the custom message points at the error type.
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
