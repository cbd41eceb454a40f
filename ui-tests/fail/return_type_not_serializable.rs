// A returned value is encoded on the callee's side: a return type that is neither a
// target nor `Serialize` is an error, which should point at the return type.
// The error names the type and says what a result must be; its label points at the
// return type. (The primary span is the attribute: rustc reports the unmet bound where
// the generated impl is.)
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
