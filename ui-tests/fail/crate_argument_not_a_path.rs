// `crate = "..."` must hold a path.
// KNOWN ISSUE (reported): the message is syn's bare "unexpected token". It should say
// that `crate = "..."` must hold a path, such as `"capwire"` or `"::my_framework::capwire"`.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target(crate = "not a path")]
impl Counter {
    pub fn value(&self) -> i64 {
        0
    }
}

fn main() {}
