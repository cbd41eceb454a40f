// `#[entrypoint]` on a struct: the message must not suggest a trait, which
// `#[entrypoint]` refuses as well.
// KNOWN ISSUE (reported): the message says "#[entrypoint] applies to an `impl` block or a
// `trait`", but `#[entrypoint]` on a trait is refused (see `entrypoint_on_trait.rs`). For
// `#[entrypoint]` it should say "applies to an `impl` block".
use capwire::entrypoint;

#[entrypoint]
pub struct Api;

fn main() {}
