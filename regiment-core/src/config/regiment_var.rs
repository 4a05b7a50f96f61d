//! A `REGIMENT_*` variable as set at start (an override the master reads, or a variable a
//! worker reads), and the parsers of its value. Each parser refuses a
//! value with an error that names the variable and what it accepts, so that an operator knows
//! what to fix. regiment-axum reads its own variables through it (see `plumbing`), so that a
//! duration means the same everywhere.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::limits::MAX_DURATION;
use crate::plumbing::PassedOnVariable;

/// What a duration variable accepts.
const DURATION: &str = "a duration above zero and at most 365 days, such as 30s or 500ms";
/// What a duration variable that may be zero accepts.
const DURATION_OR_ZERO: &str = "a duration of at most 365 days, such as 5s or 0s";
/// What a duration variable that may be `off` accepts.
const DURATION_OR_OFF: &str = "a duration above zero and at most 365 days such as 30s, or off";
/// What an on/off variable (`REGIMENT_WATCH`) accepts.
pub(super) const SWITCH: &str = "1 or 0 (also true/false, yes/no, on/off)";

/// A variable of the environment, as set. A blank value is refused like any other wrong one,
/// and its error says how to get the default: `REGIMENT_WORKERS=$WORKERS` with `WORKERS` unset,
/// or a unit file's `Environment=REGIMENT_WORKERS=`, is more likely a mistake than a wish for
/// the default, which leaving the variable unset gives.
#[derive(Debug)]
pub struct RegimentVar {
    name: &'static str,
    value: String,
}

impl RegimentVar {
    /// The variable `var` of this process's environment, if set. Only a [`PassedOnVariable`]:
    /// whatever a worker reads, its master passes on.
    pub fn read(var: PassedOnVariable) -> Option<Self> {
        Self::lookup(var.name(), &|name| std::env::var(name).ok())
    }

    /// The variable `name` as `lookup` finds it (the environment, or a test's own).
    pub(crate) fn lookup(
        name: &'static str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let value = lookup(name)?;
        Some(Self { name, value })
    }

    /// The variable's name, as errors give it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value, trimmed.
    pub(super) fn value(&self) -> &str {
        self.value.trim()
    }

    /// The value, trimmed, unless blank; `expected` says what the variable takes.
    pub(crate) fn text(&self, expected: &str) -> Result<&str> {
        self.raw_text(expected).map(str::trim)
    }

    /// The value as set, untrimmed (a user name is taken as it is), unless blank.
    pub(crate) fn raw_text(&self, expected: &str) -> Result<&str> {
        if self.is_blank() {
            return Err(self.refused(expected));
        }
        Ok(&self.value)
    }

    fn is_blank(&self) -> bool {
        self.value.trim().is_empty()
    }

    /// An error naming the variable, its value and `expected`; for a blank value, how to get
    /// the default instead.
    pub(crate) fn refused(&self, expected: impl Into<String>) -> Error {
        let mut expected = expected.into();
        if self.is_blank() {
            expected
                .push_str(" (it is set but empty: give it a value, or unset it for the default)");
        }
        Error::invalid(self.name, &self.value, expected)
    }

    /// A duration above zero and at most [`MAX_DURATION`] (`30s`, `500ms`).
    pub fn duration(&self) -> Result<Duration> {
        bounded_duration(self.value())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| self.refused(DURATION))
    }

    /// A duration of at most [`MAX_DURATION`], zero included.
    pub(crate) fn duration_or_zero(&self) -> Result<Duration> {
        bounded_duration(self.value()).ok_or_else(|| self.refused(DURATION_OR_ZERO))
    }

    /// A duration above zero and at most [`MAX_DURATION`], or `off` (`None`).
    pub fn duration_or_off(&self) -> Result<Option<Duration>> {
        if self.value().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        bounded_duration(self.value())
            .filter(|d| !d.is_zero())
            .map(Some)
            .ok_or_else(|| self.refused(DURATION_OR_OFF))
    }

    /// A number of at least `min`; `expected` says what it counts.
    pub(crate) fn number<T: FromStr + PartialOrd>(&self, min: T, expected: &str) -> Result<T> {
        self.value()
            .parse::<T>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| self.refused(expected))
    }

    /// A number within `range`; `what` says what it counts (`workers`).
    pub(crate) fn number_in<T>(&self, range: RangeInclusive<T>, what: &str) -> Result<T>
    where
        T: FromStr + PartialOrd + Display,
    {
        self.value()
            .parse::<T>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                self.refused(format!(
                    "a number of {what} from {} to {}",
                    range.start(),
                    range.end()
                ))
            })
    }

    /// A fraction from 0 to 1 (`0.01`).
    pub(crate) fn fraction(&self) -> Result<f64> {
        self.value()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| self.refused("a fraction from 0 to 1, such as 0.01"))
    }

    /// On or off: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, in any case.
    pub(crate) fn switch(&self) -> Result<bool> {
        match self.value().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(self.refused(SWITCH)),
        }
    }

    /// A value of a type with its own syntax and error text, such as `Readiness`.
    pub(crate) fn parsed<T: FromStr<Err = String>>(&self) -> Result<T> {
        self.value.parse().map_err(|e| self.refused(e))
    }
}

/// The one duration parser of the `REGIMENT_*` variables: humantime's syntax, at most
/// [`MAX_DURATION`] (deadlines are added to the clock, delays doubled).
fn bounded_duration(v: &str) -> Option<Duration> {
    humantime::parse_duration(v)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(value: &str) -> RegimentVar {
        RegimentVar {
            name: "REGIMENT_TEST",
            value: value.into(),
        }
    }

    #[test]
    fn a_blank_value_is_refused_by_every_parser_saying_how_to_get_the_default() {
        let set = |_: &str| Some("  ".to_owned());
        let blank = RegimentVar::lookup("REGIMENT_TEST", &set).expect("set, if blank");
        let refusals = [
            blank.duration().map(drop),
            blank.duration_or_zero().map(drop),
            blank.duration_or_off().map(drop),
            blank.number(0u32, "a number").map(drop),
            blank.number_in(1..=2u32, "workers").map(drop),
            blank.fraction().map(drop),
            blank.switch().map(drop),
            blank.parsed::<crate::Readiness>().map(drop),
            blank.text("a name").map(drop),
            blank.raw_text("a user").map(drop),
        ];
        for refusal in refusals {
            let e = refusal.unwrap_err().to_string();
            assert!(
                e.contains("`REGIMENT_TEST`")
                    && e.contains("set but empty")
                    && e.contains("unset it"),
                "{e}"
            );
        }
        let unset = |_: &str| None;
        assert!(RegimentVar::lookup("REGIMENT_TEST", &unset).is_none());
    }

    #[test]
    fn durations_are_above_zero_and_at_most_a_year() {
        assert_eq!(var(" 30s ").duration().unwrap(), Duration::from_secs(30));
        assert_eq!(var("500ms").duration().unwrap(), Duration::from_millis(500));
        for bad in ["0s", "366days", "soon", "-1s", "30"] {
            let e = var(bad).duration().unwrap_err().to_string();
            assert!(
                e.contains("`REGIMENT_TEST`") && e.contains("above zero and at most 365 days"),
                "{bad}: {e}"
            );
        }
        assert_eq!(var("0s").duration_or_zero().unwrap(), Duration::ZERO);
        assert!(var("366days").duration_or_zero().is_err());
        assert_eq!(var("OFF").duration_or_off().unwrap(), None);
        assert_eq!(
            var("10s").duration_or_off().unwrap(),
            Some(Duration::from_secs(10))
        );
        let e = var("0s").duration_or_off().unwrap_err().to_string();
        assert!(e.contains("or off"), "{e}");
    }

    #[test]
    fn numbers_fractions_and_switches_refuse_what_they_do_not_take() {
        assert_eq!(var("3").number(1usize, "n").unwrap(), 3);
        assert!(var("0").number(1usize, "n").is_err());
        assert!(var("-1").number(1usize, "n").is_err());
        assert!(var("99999999999").number(1u32, "n").is_err());
        assert_eq!(var("0.25").fraction().unwrap(), 0.25);
        for bad in ["1.5", "-0.1", "NaN", "half"] {
            assert!(var(bad).fraction().is_err(), "{bad}");
        }
        for on in ["1", "true", "YES", " on "] {
            assert!(var(on).switch().unwrap(), "{on}");
        }
        for off in ["0", "False", "no", "OFF"] {
            assert!(!var(off).switch().unwrap(), "{off}");
        }
        let e = var("2").switch().unwrap_err().to_string();
        assert!(e.contains("`REGIMENT_TEST`") && e.contains("1 or 0"), "{e}");
    }
}
