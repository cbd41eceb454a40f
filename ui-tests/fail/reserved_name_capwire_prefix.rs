// Names starting with `__capwire` belong to generated code.
use capwire::rpc_target;

pub struct Sneaky;

#[rpc_target]
impl Sneaky {
    pub fn __capwire_call(&self) {}
}

fn main() {}
