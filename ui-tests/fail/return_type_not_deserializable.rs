// Data returned by value must deserialize on the caller's side: a return type that is
// `Serialize` but not `Deserialize` is an error at the return type, which names the type
// and says what a result must be.
// KNOWN ISSUE: rustc's own "`Report: DeserializeOwned` is not satisfied ... required for
// `Report` to implement `Remote`" follows, from the typed client's signature
// (`RpcPromise<<Report as Remote>::Output>`); it should not appear.
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
