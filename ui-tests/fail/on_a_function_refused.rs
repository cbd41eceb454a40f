// `#[rpc_target]` on a free function is refused.
use capwire::rpc_target;

#[rpc_target]
pub fn square(i: f64) -> f64 {
    i * i
}

fn main() {
    let _ = square(2.0);
}
