//! The fixture, first version (see `tests::fixture`).
fn main() {
    tests::fixture::main("v1");
}
