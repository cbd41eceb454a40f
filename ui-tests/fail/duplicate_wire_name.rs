// Two methods that would answer the same wire name: the second is refused, and the
// message names both.
use capwire::rpc_target;

pub struct Users;

#[rpc_target]
impl Users {
    pub fn get_user(&self) -> u32 {
        1
    }

    #[rpc(name = "getUser")]
    pub fn fetch_user(&self) -> u32 {
        2
    }
}

fn main() {}
