// Several mistakes in one impl block: one compile reports every one of them, each on its
// own tokens.
use capwire::rpc_target;

pub struct Everything;

#[rpc_target]
impl Everything {
    pub fn bump(&mut self) {}

    pub fn then(&self) {}

    pub fn greet(&self, name: &str) -> String {
        name.to_owned()
    }

    #[rpc(getter)]
    pub fn scaled(&self, by: i64) -> i64 {
        by
    }

    #[rpc(nmae = "x")]
    pub fn typo(&self) {}

    pub fn convert<T>(&self) {}
}

fn main() {}
