// `constructor` is on every JavaScript object; Cap'n Web never follows it.
use capwire::rpc_target;

pub struct Factory;

#[rpc_target]
impl Factory {
    pub fn constructor(&self) -> u32 {
        0
    }
}

fn main() {}
