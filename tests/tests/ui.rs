//! The trybuild UI suite of `#[rpc_target]` and `#[entrypoint]`: `ui-tests/pass/` must
//! compile, `ui-tests/fail/` must fail with exactly the diagnostics in each `.stderr`.
//!
//! After a deliberate change to a diagnostic, regenerate the expectations with
//! `TRYBUILD=overwrite cargo test -p capwire-tests --test ui` and read the diff.

#[test]
fn ui() {
    // Paths are relative to this crate's manifest directory, where `cargo test` runs.
    let t = trybuild::TestCases::new();
    t.pass("../ui-tests/pass/*.rs");
    t.compile_fail("../ui-tests/fail/*.rs");
}
