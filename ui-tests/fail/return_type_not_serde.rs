// A return type that is neither `Serialize` nor `Deserialize` (nor a target): the first
// errors name the type and say what a result must be, one per missing trait, at the return
// type.
// KNOWN ISSUE: rustc's own "`Report: DeserializeOwned` is not satisfied ... required for
// `Report` to implement `Remote`" follows, from the typed client's signature
// (`RpcPromise<<Report as Remote>::Output>`); it should not appear.
use capwire::rpc_target;

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
