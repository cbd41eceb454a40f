// A returned value is encoded on the callee's side: a return type that is neither a
// target nor `Serialize` is an error, which should point at the return type.
// KNOWN ISSUE (reported): the error is currently E0599 about `__capwire_into_value` on
// `&Wrap<Report>` (the autoref specialization shows through), at `#[rpc_target]`. It should
// be a trait-bound error at `Report` in `-> Report` saying the type must be `Serialize` or
// a `#[rpc_target]` type.
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
