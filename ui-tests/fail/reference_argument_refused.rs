// Arguments cross the wire by value: `&str` is refused, with `String` suggested.
use capwire::rpc_target;

pub struct Greeter;

#[rpc_target]
impl Greeter {
    pub fn greet(&self, name: &str) -> String {
        format!("hello {name}")
    }
}

fn main() {}
