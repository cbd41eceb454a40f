// Data returned by value must deserialize on the caller's side: a return type that is
// `Serialize` but not `Deserialize` is refused.
// KNOWN ISSUE (reported): the error currently points at `#[rpc_target]`, because the
// client method's `RpcPromise<<Report as Remote>::Output>` carries the call-site span. It
// should point at `Report` in `-> Report`.
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
