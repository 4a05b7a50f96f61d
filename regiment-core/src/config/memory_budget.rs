//! The memory budget of the whole regiment ([`MemoryBudget`], given to
//! [`crate::Builder::memory_budget`] or by `REGIMENT_MEMORY_BUDGET`): its forms and the text
//! the variable takes. Its resolution against the memory limit, at build, is in
//! `budget_resolution.rs`.

use std::fmt;
use std::str::FromStr;

/// A MB as regiment counts it: a mebibyte, 2^20 bytes, as `top`, `ps` and regiment-tower's
/// `MemoryFootprint::mb` count them.
pub(super) const MIB: u64 = 1 << 20;
/// A GB: a gibibyte, 2^30 bytes.
const GIB: u64 = 1 << 30;

/// What `REGIMENT_MEMORY_BUDGET` accepts.
pub(super) const ACCEPTED: &str = "a size of at least 1MB in whole MB or GB, such as 1500MB or \
     2GB (MB: 2^20 bytes, GB: 2^30; MiB and GiB are the same), or a share of the memory limit \
     from 1% to 100%, such as 80%";

/// A memory budget for the whole regiment: the sum of the private memory (PSS) of the master
/// and of every worker is kept under it. When the sum passes it, the worker with the most
/// private memory is replaced (new before old, as always), and no surge replacement may push
/// the sum past it. Off by default.
///
/// A budget is a size, [`MemoryBudget::mb`], or a share of the memory limit,
/// [`MemoryBudget::percent_of_limit`]: the limit is the lowest of the master's cgroup's
/// (`memory.max`, or `memory.high` when lower, on cgroup v2; `memory.limit_in_bytes` on v1) and
/// the machine's memory, read once at build. A MB is a mebibyte (2^20 bytes), as `top` and `ps`
/// count, and as regiment-tower's `MemoryFootprint::mb` does. The budget and the limit are in
/// [`crate::Status::memory`] from build on.
///
/// Refused at build: a size below 1 MB, a share outside 1 to 100 percent, and a share that
/// comes to less than 1 MB. A size above the limit is kept, with a warning at build: the
/// kernel's OOM killer would act before the budget could.
///
/// `REGIMENT_MEMORY_BUDGET` overrides it at start: `1500MB`, `2GB` (whole numbers; `MiB` and
/// `GiB` are taken too, any case, and mean the same) or `80%`. A wrong value is refused under
/// the variable's name, with the forms it accepts.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides, MemoryBudget};
/// // In a container, keep the master and its workers under 80 % of its memory limit, so that
/// // the budget replaces the largest worker before the OOM killer kills one.
/// let supervisor = Builder::new()
///     .workers(2)
///     .memory_budget(MemoryBudget::percent_of_limit(80))
///     .env_overrides(EnvOverrides::Ignore)
///     .build()?;
/// let memory = supervisor.handle().status().memory;
/// let (budget, limit) = (memory.budget.unwrap(), memory.limit.unwrap());
/// assert_eq!(u128::from(budget.bytes), u128::from(limit.bytes) * 80 / 100);
///
/// // The variable's forms parse to the same budgets.
/// assert_eq!("1500MB".parse(), Ok(MemoryBudget::mb(1500)));
/// assert_eq!("2GB".parse(), Ok(MemoryBudget::mb(2048)));
/// assert_eq!("80%".parse(), Ok(MemoryBudget::percent_of_limit(80)));
/// // No unit is refused: bytes or MB?
/// assert!("1500".parse::<MemoryBudget>().is_err());
/// # Ok::<(), regiment_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget(pub(super) Budget);

/// The forms of a [`MemoryBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Budget {
    /// A size, bytes (a whole number of MB).
    Fixed(u64),
    /// This share of the memory limit, in percent (checked at build).
    PercentOfLimit(u8),
}

impl MemoryBudget {
    /// A budget of `mb` MB (mebibytes, `mb` × 2^20 bytes); at least 1.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides, MemoryBudget};
    /// let builder = Builder::new().memory_budget(MemoryBudget::mb(1500));
    /// let memory = builder.env_overrides(EnvOverrides::Ignore).build()?.handle().status().memory;
    /// assert_eq!(memory.budget.unwrap().bytes, 1500 << 20);
    /// // No memory at all is no budget: refused, naming the option.
    /// let builder = Builder::new().memory_budget(MemoryBudget::mb(0));
    /// let err = builder.env_overrides(EnvOverrides::Ignore).build().unwrap_err();
    /// assert!(err.to_string().contains("`memory_budget`"));
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn mb(mb: u64) -> Self {
        MemoryBudget(Budget::Fixed(mb.saturating_mul(MIB)))
    }

    /// A budget of `percent` percent of the memory limit read at build, from 1 to 100.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides, MemoryBudget};
    /// let builder = Builder::new().memory_budget(MemoryBudget::percent_of_limit(80));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // Past the limit, the OOM killer acts first: refused, with the values accepted.
    /// let builder = Builder::new().memory_budget(MemoryBudget::percent_of_limit(120));
    /// let err = builder.env_overrides(EnvOverrides::Ignore).build().unwrap_err();
    /// assert!(err.to_string().contains("from 1 to 100"));
    /// ```
    pub fn percent_of_limit(percent: u8) -> Self {
        MemoryBudget(Budget::PercentOfLimit(percent))
    }
}

/// As `REGIMENT_MEMORY_BUDGET` takes it: `1500MB`, `80%`.
impl fmt::Display for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Budget::Fixed(bytes) if bytes.is_multiple_of(MIB) => write!(f, "{}MB", bytes / MIB),
            // Only `mb`'s saturation at u64::MAX gets here.
            Budget::Fixed(bytes) => write!(f, "{bytes} bytes"),
            Budget::PercentOfLimit(percent) => write!(f, "{percent}%"),
        }
    }
}

/// The text of `REGIMENT_MEMORY_BUDGET`: a whole number of `MB` or `GB` (`MiB`, `GiB` too, in
/// any case, a space before the unit allowed), at least 1 MB; or a whole percentage of the
/// limit from `1%` to `100%`. No unit is refused rather than guessed (bytes, or MB?), and so
/// are fractions (`1.5GB`: give `1536MB`). The error says what is accepted.
impl FromStr for MemoryBudget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(percent) = s.strip_suffix('%') {
            return digits(percent.trim_end())
                .and_then(|p| u8::try_from(p).ok())
                .filter(|p| (1..=100).contains(p))
                .map(MemoryBudget::percent_of_limit)
                .ok_or_else(|| ACCEPTED.to_owned());
        }
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(unit_at);
        let unit = match unit.trim_start().to_ascii_lowercase().as_str() {
            "mb" | "mib" => MIB,
            "gb" | "gib" => GIB,
            _ => return Err(ACCEPTED.to_owned()),
        };
        digits(number)
            .and_then(|n| n.checked_mul(unit))
            .filter(|bytes| *bytes >= MIB)
            .map(|bytes| MemoryBudget(Budget::Fixed(bytes)))
            .ok_or_else(|| ACCEPTED.to_owned())
    }
}

/// A whole number written in ASCII digits alone (no sign, which `u64::from_str` would take).
fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> MemoryBudget {
        s.parse().unwrap_or_else(|e| panic!("{s:?} refused: {e}"))
    }

    #[test]
    fn sizes_are_whole_mb_or_gb_of_two_to_the_twenty_and_thirty_bytes() {
        assert_eq!(parsed("1500MB"), MemoryBudget::mb(1500));
        assert_eq!(parsed(" 1500 MB "), MemoryBudget::mb(1500));
        assert_eq!(parsed("1500mb"), MemoryBudget::mb(1500));
        assert_eq!(parsed("1500MiB"), MemoryBudget::mb(1500));
        assert_eq!(parsed("2GB"), MemoryBudget::mb(2048));
        assert_eq!(parsed("2gib"), MemoryBudget::mb(2048));
        assert_eq!(parsed("1MB"), MemoryBudget(Budget::Fixed(1 << 20)));
        assert_eq!(parsed("2GB"), MemoryBudget(Budget::Fixed(2 << 30)));
    }

    #[test]
    fn shares_are_whole_percentages_from_1_to_100() {
        assert_eq!(parsed("80%"), MemoryBudget::percent_of_limit(80));
        assert_eq!(parsed(" 80 % "), MemoryBudget::percent_of_limit(80));
        assert_eq!(parsed("1%"), MemoryBudget::percent_of_limit(1));
        assert_eq!(parsed("100%"), MemoryBudget::percent_of_limit(100));
    }

    #[test]
    fn anything_else_is_refused_with_the_forms_accepted() {
        for bad in [
            "",
            "  ",
            "1500",
            "1500M",
            "1500K",
            "1500KB",
            "1500 bytes",
            "1.5GB",
            "-1MB",
            "+1MB",
            "0MB",
            "0GB",
            "0%",
            "101%",
            "256%",
            "+80%",
            "80.5%",
            "%",
            "MB",
            "lots",
            // 2^44 MB and more do not fit in 64 bits of bytes.
            "17592186044416MB",
            "99999999999999999999GB",
        ] {
            let e = bad.parse::<MemoryBudget>().unwrap_err();
            assert_eq!(e, ACCEPTED, "{bad:?}");
        }
        assert!(ACCEPTED.contains("1500MB") && ACCEPTED.contains("80%"));
    }

    #[test]
    fn a_budget_shows_as_the_variable_takes_it() {
        for text in ["1500MB", "2048MB", "80%"] {
            assert_eq!(parsed(text).to_string(), text);
        }
        assert_eq!(
            MemoryBudget::mb(u64::MAX).to_string(),
            format!("{} bytes", u64::MAX)
        );
    }
}
