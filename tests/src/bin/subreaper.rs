//! `subreaper PROGRAM [ARGS...]`: makes this process a child subreaper, then executes PROGRAM in
//! it (the attribute survives execve), so that PROGRAM, a master, is the one orphans below it
//! are re-parented to, as to PID 1 in a container.

use std::os::unix::process::CommandExt;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let program = args.next().expect("usage: subreaper PROGRAM [ARGS...]");
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    let err = std::process::Command::new(&program).args(args).exec();
    eprintln!(
        "subreaper: cannot execute {}: {err}",
        program.to_string_lossy()
    );
    std::process::exit(127);
}
