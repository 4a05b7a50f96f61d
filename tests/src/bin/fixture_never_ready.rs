//! The `never_ready` variant of the fixture (see `tests::fixture`).
fn main() {
    tests::fixture::main("never_ready");
}
