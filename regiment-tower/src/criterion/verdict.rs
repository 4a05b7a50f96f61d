//! What a criterion decides.

/// What a [`Criterion`](super::Criterion) hook decides.
///
/// ```
/// use regiment_tower::Verdict;
/// assert_eq!(Verdict::replace_if(false, || unreachable!()), Verdict::Keep);
/// assert_eq!(Verdict::replace("x: 1 >= 1"), Verdict::Replace("x: 1 >= 1".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Keep this worker.
    #[default]
    Keep,
    /// Replace this worker, for this reason (criterion, figure, threshold).
    Replace(String),
}

impl Verdict {
    /// [`Verdict::Replace`] with `reason`.
    ///
    /// ```
    /// let v = regiment_tower::Verdict::replace("queue-depth: 900 >= 800");
    /// assert!(v.is_replace());
    /// ```
    pub fn replace(reason: impl Into<String>) -> Self {
        Verdict::Replace(reason.into())
    }

    /// [`Verdict::Replace`] with the reason `reason()` builds if `cond`, else [`Verdict::Keep`]
    /// (the reason is only formatted when needed).
    ///
    /// ```
    /// use regiment_tower::Verdict;
    /// let n = 12;
    /// assert!(Verdict::replace_if(n >= 10, || format!("n: {n} >= 10")).is_replace());
    /// ```
    pub fn replace_if(cond: bool, reason: impl FnOnce() -> String) -> Self {
        if cond {
            Verdict::Replace(reason())
        } else {
            Verdict::Keep
        }
    }

    /// True for [`Verdict::Replace`].
    ///
    /// ```
    /// assert!(!regiment_tower::Verdict::Keep.is_replace());
    /// ```
    pub fn is_replace(&self) -> bool {
        matches!(self, Verdict::Replace(_))
    }
}
