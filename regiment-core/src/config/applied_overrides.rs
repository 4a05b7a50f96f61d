//! Which options the overrides set: the `REGIMENT_*` variables applied at build, in order, with
//! their values. An error names what the user wrote: the variable when one set the value, even
//! for options checked together (`REGIMENT_BACKOFF_INITIAL=1h` against the longest delay of
//! `backoff`); and the master logs them at start, since a variable beats whatever the program
//! set, a command-line flag of its own included.

use super::regiment_var::RegimentVar;
use crate::error::Error;

/// The variables that set options, with their values as set.
#[derive(Debug, Default, Clone)]
pub(crate) struct AppliedOverrides {
    set: Vec<(&'static str, String)>,
}

/// One of two values checked together, for [`AppliedOverrides::conflict`].
pub(super) struct Side {
    /// The builder method that sets it (`backoff`), the name errors give when the code set it.
    pub option: &'static str,
    /// How the other side's error refers to it when the code set it: `` `backoff`'s longest
    /// delay ``.
    pub label: &'static str,
    /// The variable that may set it instead.
    pub var: &'static str,
    /// Its value, as errors show it.
    pub value: String,
    /// What it must be, as a start of a phrase that the other side ends: `a first delay no
    /// longer than`.
    pub must: &'static str,
}

impl AppliedOverrides {
    /// Notes that `var` set an option.
    pub(super) fn record(&mut self, var: &RegimentVar) {
        self.set.push((var.name(), var.value().to_owned()));
    }

    /// Whether the variable `var` set an option.
    pub(super) fn is_set(&self, var: &str) -> bool {
        self.set.iter().any(|(name, _)| *name == var)
    }

    /// `var` if it set the option, else `option`: the name the user wrote.
    pub(super) fn name(&self, option: &'static str, var: &'static str) -> &'static str {
        if self.is_set(var) { var } else { option }
    }

    /// The error for two values that do not go together: it names the one the environment set
    /// (`a` if both were, or neither), with its value and what it must be against the other,
    /// which it names as the user wrote it too.
    pub(super) fn conflict(&self, a: Side, b: Side) -> Error {
        let (named, other) = if self.is_set(a.var) || !self.is_set(b.var) {
            (a, b)
        } else {
            (b, a)
        };
        let other_name = if self.is_set(other.var) {
            format!("`{}`", other.var)
        } else {
            other.label.to_owned()
        };
        Error::invalid(
            self.name(named.option, named.var),
            named.value,
            format!("{} {other_name} ({})", named.must, other.value),
        )
    }

    /// `REGIMENT_WORKERS=2, REGIMENT_BIND=127.0.0.1:0` in the order they applied, or `None` when
    /// no variable set an option. Values are shown: every variable regiment reads is a count, a
    /// duration, an address, a path, a user or group, or a name `ps` shows anyway; none is made
    /// to hold a secret (the variables regiment does not read, which might, are only ever named:
    /// see `unknown_vars.rs`).
    pub(crate) fn summary(&self) -> Option<String> {
        (!self.set.is_empty()).then(|| {
            self.set
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(vars: &[(&'static str, &str)]) -> AppliedOverrides {
        AppliedOverrides {
            set: vars.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
        }
    }

    fn sides() -> (Side, Side) {
        let first = Side {
            option: "backoff",
            label: "`backoff`'s first delay",
            var: "REGIMENT_BACKOFF_INITIAL",
            value: "1h".into(),
            must: "a first delay no longer than",
        };
        let longest = Side {
            option: "backoff",
            label: "`backoff`'s longest delay",
            var: "REGIMENT_BACKOFF_MAX",
            value: "30s".into(),
            must: "a longest delay at least",
        };
        (first, longest)
    }

    fn conflict(vars: &[(&'static str, &str)]) -> String {
        let (a, b) = sides();
        applied(vars).conflict(a, b).to_string()
    }

    #[test]
    fn a_conflict_names_the_side_the_environment_set_and_the_other_as_it_was_set() {
        assert_eq!(
            conflict(&[]),
            "invalid value \"1h\" for option `backoff`: expected a first delay no longer than \
             `backoff`'s longest delay (30s)"
        );
        assert_eq!(
            conflict(&[("REGIMENT_BACKOFF_INITIAL", "1h")]),
            "invalid value \"1h\" for option `REGIMENT_BACKOFF_INITIAL`: expected a first delay \
             no longer than `backoff`'s longest delay (30s)"
        );
        assert_eq!(
            conflict(&[("REGIMENT_BACKOFF_MAX", "30s")]),
            "invalid value \"30s\" for option `REGIMENT_BACKOFF_MAX`: expected a longest delay \
             at least `backoff`'s first delay (1h)"
        );
        assert_eq!(
            conflict(&[
                ("REGIMENT_BACKOFF_MAX", "30s"),
                ("REGIMENT_BACKOFF_INITIAL", "1h")
            ]),
            "invalid value \"1h\" for option `REGIMENT_BACKOFF_INITIAL`: expected a first delay \
             no longer than `REGIMENT_BACKOFF_MAX` (30s)"
        );
    }

    #[test]
    fn the_summary_lists_the_variables_in_order_with_their_values() {
        assert_eq!(applied(&[]).summary(), None);
        let set = applied(&[("REGIMENT_WORKERS", "2"), ("REGIMENT_BIND", "127.0.0.1:0")]);
        assert_eq!(
            set.summary().as_deref(),
            Some("REGIMENT_WORKERS=2, REGIMENT_BIND=127.0.0.1:0")
        );
        assert_eq!(set.name("bind", "REGIMENT_BIND"), "REGIMENT_BIND");
        assert_eq!(
            set.name("drain_timeout", "REGIMENT_DRAIN_TIMEOUT"),
            "drain_timeout"
        );
    }
}
