//! The `v2` variant of the fixture (see `tests::fixture`).
fn main() {
    tests::fixture::main("v2");
}
