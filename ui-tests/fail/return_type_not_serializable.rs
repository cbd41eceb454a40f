// A returned value is encoded on the callee's side: a return type that is neither a
// target nor `Serialize` is an error at the return type, which names the type and says
// what a result must be.
use capwire::rpc_target;
use serde::Deserialize;

#[derive(Deserialize)]
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
