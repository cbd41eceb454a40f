// A reserved name is refused when it comes from `#[rpc(name = "...")]` too, and the error
// points at the literal.
use capwire::rpc_target;

pub struct Doc;

#[rpc_target]
impl Doc {
    #[rpc(name = "toJSON")]
    pub fn to_json(&self) -> String {
        String::new()
    }
}

fn main() {}
