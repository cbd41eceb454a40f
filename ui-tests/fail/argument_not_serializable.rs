// The generated client encodes arguments: an argument type that is `Deserialize` but not
// `Serialize` is an error at the argument's type, which names the type and says what an
// argument must be.
use capwire::rpc_target;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Query {
    pub text: String,
}

pub struct Search;

#[rpc_target]
impl Search {
    pub fn search(&self, query: Query) -> u32 {
        query.text.len() as u32
    }
}

fn main() {}
