// `get_user` and `r#getUser` both default to the wire name `getUser`.
#![allow(non_snake_case)]
use capwire::rpc_target;

pub struct Users;

#[rpc_target]
impl Users {
    pub fn get_user(&self) -> u32 {
        1
    }

    pub fn getUser(&self) -> u32 {
        2
    }
}

fn main() {}
