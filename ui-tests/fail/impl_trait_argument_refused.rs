// `impl Trait` in argument position is a hidden generic: refused too.
use capwire::rpc_target;

pub struct Printer;

#[rpc_target]
impl Printer {
    pub fn print(&self, text: impl Into<String>) -> String {
        text.into()
    }
}

fn main() {}
