// `impl Trait` has no type the client could name: refused in return position.
use capwire::rpc_target;

pub struct Numbers;

#[rpc_target]
impl Numbers {
    pub fn list(&self) -> impl Iterator<Item = u32> {
        0..3
    }
}

fn main() {}
