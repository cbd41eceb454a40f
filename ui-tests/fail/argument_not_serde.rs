// An argument type that is neither `Serialize` nor `Deserialize`: one error per missing
// trait, each naming the type and saying what an argument must be, at the argument's type.
use capwire::rpc_target;

pub struct Query {
    pub text: String,
}

pub struct Search;

#[rpc_target]
impl Search {
    pub fn search(&self, query: Query, limit: u32) -> u32 {
        query.text.len() as u32 + limit
    }
}

fn main() {}
