// A type is one target: `#[rpc_target]` on two impl blocks of the same type is refused
// (put every RPC method in one block; helpers go in a plain `impl`).
// KNOWN ISSUE (reported): the errors are rustc's "the name `CounterClient` is defined
// multiple times" and "conflicting implementations" of `RpcObject`, `RpcTarget`,
// `Remote`, `Clone`, `From`, `AsRef` (and `TS` with the `typescript` feature, which the
// examples turn on for this test build), all at the second `#[rpc_target]`. A macro cannot see
// the other block, but the first error could carry that advice.
use capwire::rpc_target;

pub struct Counter;

#[rpc_target]
impl Counter {
    pub fn value(&self) -> i64 {
        0
    }
}

#[rpc_target]
impl Counter {
    pub fn reset(&self) {}
}

fn main() {}
