// Data returned by value must deserialize on the caller's side: a return type that is
// `Serialize` but not `Deserialize` is refused.
use capwire::rpc_target;
use serde::Serialize;

#[derive(Serialize)]
pub struct Report {
    pub lines: u32,
}

pub struct Reporter;

#[rpc_target]
impl Reporter {
    pub fn report(&self) -> Report {
        Report { lines: 0 }
    }
}

fn main() {}
