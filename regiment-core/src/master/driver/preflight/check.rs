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
    /// the master that runs it. A value that is no version is an error naming the variable.
    pub(crate) fn requested() -> Result<Option<Self>> {
        Self::from_value(std::env::var_os(PREFLIGHT_VAR))
    }

    /// [`Check::requested`] with [`PREFLIGHT_VAR`]'s value.
    fn from_value(value: Option<std::ffi::OsString>) -> Result<Option<Self>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let value = value.to_string_lossy();
        match value.trim().parse() {
            Ok(version) => Ok(Some(Self { version })),
            Err(_) => Err(Error::InvalidOption {
                option: PREFLIGHT_VAR,
                value: value.into_owned(),
                expected: String::from(
                    "a handover format version (a number), set by a master that upgrades",
                ),
            }),
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
    fn a_version_is_a_preflight_and_anything_else_an_error_naming_the_variable() {
        assert_eq!(Check::from_value(None).unwrap(), None);
        assert_eq!(
            Check::from_value(Some(" 7 ".into())).unwrap(),
            Some(Check { version: 7 })
        );
        for value in ["", "v1", "-1", "1.0"] {
            let err = Check::from_value(Some(value.into())).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidOption { option: PREFLIGHT_VAR, value: v, .. } if v == value),
                "{err}"
            );
            assert!(err.to_string().contains("REGIMENT_PREFLIGHT"), "{err}");
        }
    }
}
