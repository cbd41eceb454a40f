// On an interface implementation, `#[rpc(...)]` is refused: names and getters are decided
// by the trait's declaration.
use capwire::rpc_target;

#[rpc_target]
pub trait Shape {
    fn area(&self) -> f64;
}

pub struct Square(f64);

#[rpc_target]
impl Shape for Square {
    #[rpc(name = "surface")]
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

fn main() {}
