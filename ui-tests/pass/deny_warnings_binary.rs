// The expansion is warning-free in a user's crate, under strict lints. This is a binary
// crate in which no generated client method is ever called, and the targets are private
// (some inside a private module, where even `pub` items are checked for use), so any
// `dead_code` in the expansion would fail the build.
#![deny(warnings)]
#![deny(
    future_incompatible,
    nonstandard_style,
    rust_2018_idioms,
    rust_2021_compatibility,
    rust_2024_compatibility,
    unused,
    unused_qualifications,
    unused_results,
    unused_import_braces,
    trivial_casts,
    trivial_numeric_casts,
    unused_lifetimes,
    single_use_lifetimes,
    unsafe_code,
    missing_debug_implementations,
    variant_size_differences
)]

use capwire::TypedStub;
use capwire::{RpcError, Stub, entrypoint, rpc_target};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
}

#[derive(Debug)]
struct Counter;

#[rpc_target]
impl Counter {
    /// Documented.
    pub fn increment(&self, by: Option<i64>) -> i64 {
        by.unwrap_or(1)
    }

    #[rpc(getter)]
    pub fn value(&self) -> i64 {
        0
    }

    pub async fn later(&self, _unused: u8, _: u8) -> Result<(), RpcError> {
        Ok(())
    }

    pub fn point(&self, p: Point) -> Point {
        p
    }
}

#[rpc_target]
trait Shape {
    fn area(&self) -> f64;

    #[rpc(getter)]
    fn name(&self) -> String;

    async fn later(&self) -> f64;
}

#[derive(Debug)]
struct Square;

#[rpc_target]
impl Shape for Square {
    fn area(&self) -> f64 {
        1.0
    }

    fn name(&self) -> String {
        String::from("square")
    }

    async fn later(&self) -> f64 {
        2.0
    }
}

#[derive(Debug)]
struct Main;

#[entrypoint]
impl Main {
    pub fn counter(&self) -> Counter {
        Counter
    }

    pub fn square(&self) -> Square {
        Square
    }
}

mod inner {
    use capwire::rpc_target;

    #[derive(Debug)]
    pub(crate) struct Hidden;

    #[rpc_target]
    impl Hidden {
        pub fn ping(&self) -> u32 {
            0
        }

        #[rpc(getter)]
        pub fn size(&self) -> u32 {
            1
        }
    }

    #[rpc_target]
    pub(crate) trait Private {
        fn name(&self) -> String;
    }

    #[derive(Debug)]
    pub(crate) struct Named;

    #[rpc_target]
    impl Private for Named {
        fn name(&self) -> String {
            String::from("named")
        }
    }
}

fn main() {
    let _main: Stub<Main> = TypedStub::local(Main);
    let _hidden: Stub<inner::Hidden> = TypedStub::local(inner::Hidden);
    let _named: Stub<inner::Named> = TypedStub::local(inner::Named);
}
