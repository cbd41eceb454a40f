// An async method's future runs on a multi-threaded runtime: it must be `Send`.
use capwire::rpc_target;
use std::rc::Rc;

pub struct Clock;

#[rpc_target]
impl Clock {
    pub async fn tick(&self) -> u32 {
        let shared = Rc::new(1);
        std::future::ready(()).await;
        *shared
    }
}

fn main() {}
