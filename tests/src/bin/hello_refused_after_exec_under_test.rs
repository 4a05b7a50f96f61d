//! A build of `hello` that passes the preflight of an upgrade (it builds its master as `hello`
//! does) but whose master, once executed by the upgrade, is refused its options: the upgrade
//! must go back to the previous program, and the service never stop (tests/tests/upgrade.rs).

fn main() -> std::process::ExitCode {
    // Executed by an upgrade in place (not its preflight): this build's master wants no
    // worker at all, which no master accepts.
    if std::env::var_os("REGIMENT_HANDOVER_FD").is_some() {
        let refused = regiment_core::Builder::new().workers(0).build();
        eprintln!("hello_refused_after_exec: {:?}", refused.err());
        return std::process::ExitCode::FAILURE;
    }
    examples::hello_app::main()
}
