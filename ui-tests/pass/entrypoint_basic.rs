// An entrypoint is a target with the same surface.
use capwire::TypedStub;
use capwire::{Stub, entrypoint};

pub struct Api;

#[entrypoint]
impl Api {
    pub fn ping(&self) -> String {
        "pong".to_owned()
    }

    /// `connect` is reserved on the wire, but a Rust method may still be called `connect`
    /// when it is renamed.
    #[rpc(name = "open")]
    pub fn connect(&self) -> bool {
        true
    }
}

fn main() {
    let _main: Stub<Api> = TypedStub::local(Api);
}
