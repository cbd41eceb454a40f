// `pub(crate)` is not `pub`: `#[rpc]` on such a method is refused as well.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target]
impl Counter {
    #[rpc(name = "current")]
    pub(crate) fn value(&self) -> i64 {
        0
    }
}

fn main() {
    let _ = Counter.value();
}
