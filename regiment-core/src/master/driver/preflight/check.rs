//! The new program's side of the preflight: asked for by [`PREFLIGHT_VAR`], concluded in
//! `Supervisor::run` (see the module above for what is built and what is not).

use std::io::Write;

use super::{PREFLIGHT_VAR, ok_line};
use crate::error::{Error, Result};
use crate::master::driver::handover::{self, HANDOVER_VERSION};

/// A preflight asked for: the handover version the old master will write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Check {
    version: u32,
}

impl Check {
    /// The preflight [`PREFLIGHT_VAR`] asks for, if it is set: read whatever
    /// `Builder::env_overrides` says, as it is no option of the application's but the word of
    /// the master that runs it. Its value is `VERSION:PID`, the handover version and the pid of
    /// the master that asks, which must be this process's parent: a variable left over in a
    /// unit file or an image (or inherited from such a run) is an error naming it, never a
    /// master that binds nothing and exits 0. So is a value of another shape.
    pub(crate) fn requested() -> Result<Option<Self>> {
        let parent = nix::unistd::getppid().as_raw();
        Self::from_value(std::env::var_os(PREFLIGHT_VAR), parent)
    }

    /// [`Check::requested`] with [`PREFLIGHT_VAR`]'s value and this process's parent.
    fn from_value(value: Option<std::ffi::OsString>, parent: i32) -> Result<Option<Self>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let value = value.to_string_lossy();
        let invalid = |expected: String| Error::InvalidOption {
            option: PREFLIGHT_VAR,
            value: value.clone().into_owned(),
            expected,
        };
        let parsed = value
            .trim()
            .split_once(':')
            .and_then(|(v, p)| Some((v.parse::<u32>().ok()?, p.parse::<i32>().ok()?)));
        match parsed {
            Some((version, master)) if master == parent => Ok(Some(Self { version })),
            Some((_, master)) => Err(invalid(format!(
                "only in a program run by its master (pid {master}) for a preflight, and this \
                 process's parent is pid {parent}: a leftover? Unset it"
            ))),
            None => Err(invalid(String::from(
                "VERSION:PID (a handover format version, and the pid of the master that runs \
                 this program to check it), set by a master that upgrades",
            ))),
        }
    }

    /// Reached `serve`: says whether this program reads the version asked about, and exits,
    /// 0 with [`ok_line`] on stdout if it does, 1 with the reason on stderr if not.
    pub(crate) fn conclude(self) -> ! {
        if !handover::reads(self.version) {
            // Not eprintln: a closed stderr must not turn the refusal into a panic's status.
            let _ = writeln!(
                std::io::stderr(),
                "regiment preflight: refused: this program reads handover version \
                 {HANDOVER_VERSION}, not version {}",
                self.version
            );
            std::process::exit(1);
        }
        let mut out = std::io::stdout().lock();
        let written = writeln!(out, "{}", ok_line(self.version)).and_then(|()| out.flush());
        if let Err(e) = written {
            let _ = writeln!(
                std::io::stderr(),
                "regiment preflight: cannot say it passed on stdout: {e}"
            );
            std::process::exit(1);
        }
        std::process::exit(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_and_the_parent_make_a_preflight_and_anything_else_an_error_naming_it() {
        assert_eq!(Check::from_value(None, 42).unwrap(), None);
        assert_eq!(
            Check::from_value(Some(" 7:42 ".into()), 42).unwrap(),
            Some(Check { version: 7 })
        );
        for value in ["", "7", "v1:42", "-1:42", "1.0:42", "7:", "7:x", "7:43"] {
            let err = Check::from_value(Some(value.into()), 42).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidOption { option: PREFLIGHT_VAR, value: v, .. } if v == value),
                "{err}"
            );
            assert!(err.to_string().contains("REGIMENT_PREFLIGHT"), "{err}");
        }
        // Left over: another process asked, not this process's parent.
        let err = Check::from_value(Some("7:43".into()), 42)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pid 43") && err.contains("pid 42"), "{err}");
    }
}
