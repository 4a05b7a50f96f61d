//! The `exit_early` variant of the fixture (see `tests::fixture`).
fn main() {
    tests::fixture::main("exit_early");
}
