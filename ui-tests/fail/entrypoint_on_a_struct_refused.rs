// `#[entrypoint]` on a struct: the message must not suggest a trait, which
// `#[entrypoint]` refuses as well.
use capwire::entrypoint;

#[entrypoint]
pub struct Api;

fn main() {}
