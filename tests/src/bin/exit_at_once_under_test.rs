//! A program that exits 0 at once, having said so: no regiment master (the preflight of an
//! upgrade refuses it, tests/tests/preflight.rs).
fn main() {
    println!("exit_at_once_under_test: nothing to do");
}
