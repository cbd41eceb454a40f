//! The trybuild cases of a crate that renames its `capwire` dependency
//! (`rpc = { package = "capwire", .. }` in this package's manifest, which trybuild copies):
//! `renamed/` must compile with no `crate = "..."` argument anywhere.

#[test]
fn renamed_dependency() {
    // Relative to this package's manifest directory, where `cargo test` runs.
    trybuild::TestCases::new().pass("renamed/*.rs");
}
