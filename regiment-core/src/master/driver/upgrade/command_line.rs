//! The new master's command line and environment: the old master's own, as the process was
//! started, but for the upgrade's variables, which are set afresh for each exec.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::worker_vars;

/// The master's `argv[0]` (for a person: the preflight shows it) and the arguments after it.
pub(super) fn arguments() -> (String, Vec<OsString>) {
    let mut args = std::env::args_os();
    let argv0 = args
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    (argv0, args.collect())
}

/// `argv` and `envp` for the exec: this process's own arguments, and its environment without
/// the upgrade's variables, with `set` on top.
pub(crate) fn for_exec(set: &[(&str, String)]) -> Result<(Vec<CString>, Vec<CString>), String> {
    let argv = std::env::args_os()
        .map(|a| c_string(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        if is_upgrade_var(&name) || set.iter().any(|(n, _)| OsStr::new(n) == name) {
            continue;
        }
        let mut pair = name.as_bytes().to_vec();
        pair.push(b'=');
        pair.extend_from_slice(value.as_bytes());
        env.push(c_string(&pair)?);
    }
    for (name, value) in set {
        env.push(c_string(format!("{name}={value}").as_bytes())?);
    }
    Ok((argv, env))
}

fn is_upgrade_var(name: &OsStr) -> bool {
    worker_vars::UPGRADE.iter().any(|n| OsStr::new(n) == name)
}

fn c_string(bytes: &[u8]) -> Result<CString, String> {
    // The kernel gave them to this process as C strings: none holds a NUL.
    CString::new(bytes).map_err(|e| format!("an argument or variable holds a NUL byte: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exec_gets_this_processs_arguments_and_environment_with_the_upgrades_set_afresh() {
        let (argv, env) = for_exec(&[(worker_vars::UPGRADE_HANDOVER_FD, "7".into())]).unwrap();
        let first = std::env::args_os().next().unwrap();
        assert_eq!(argv[0].as_bytes(), first.as_bytes());
        assert_eq!(argv.len(), std::env::args_os().count());
        let handover: Vec<_> = env
            .iter()
            .filter(|e| e.as_bytes().starts_with(b"REGIMENT_HANDOVER_FD="))
            .collect();
        assert_eq!(handover.len(), 1);
        assert_eq!(handover[0].as_bytes(), b"REGIMENT_HANDOVER_FD=7");
        let path = std::env::var("PATH").unwrap();
        assert!(
            env.iter()
                .any(|e| e.as_bytes() == format!("PATH={path}").as_bytes())
        );
    }
}
