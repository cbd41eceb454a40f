// A return value crosses the wire by value too: `&str` is refused.
use capwire::rpc_target;

pub struct Greeter {
    name: String,
}

#[rpc_target]
impl Greeter {
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn main() {}
