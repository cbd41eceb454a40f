//! The expansion is warning-free with `missing_docs` denied: the generated client is
//! documented, and user docs carry over to its methods.
#![deny(warnings, missing_docs, unreachable_pub)]

use capwire::TypedStub;
use capwire::{Stub, rpc_target};

/// A counter.
pub struct Counter;

#[rpc_target]
impl Counter {
    /// The value.
    pub fn value(&self) -> i64 {
        0
    }
}

/// An interface.
#[rpc_target]
pub trait Named {
    /// The name.
    fn name(&self) -> String;
}

impl Named for Counter {
    fn name(&self) -> String {
        String::from("counter")
    }
}

fn main() {
    let _counter: Stub<Counter> = TypedStub::local(Counter);
}
