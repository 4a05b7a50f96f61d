//! The [`crate::Builder::before_spawn`] hook and what it sees.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

/// A hook run by the master before each spawn; see [`crate::Builder::before_spawn`].
///
/// ```
/// use std::sync::Arc;
/// use regiment_core::{BeforeSpawn, Builder, SpawnPlan};
/// // A hook kept as a value, e.g. to share it between the builders of several services.
/// let hook: BeforeSpawn = Arc::new(|plan: &mut SpawnPlan| {
///     plan.env("SLOT", plan.slot().to_string());
///     Ok(())
/// });
/// let builder = Builder::new().before_spawn(move |plan| hook(plan));
/// # drop(builder);
/// ```
pub type BeforeSpawn = Arc<
    dyn Fn(&mut SpawnPlan) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
>;

/// What the master is about to spawn, as seen (and adjusted) by a
/// [`crate::Builder::before_spawn`] hook.
///
/// ```
/// // Nothing runs yet: the master calls the hook before each spawn, in `run`.
/// let builder = regiment_core::Builder::new().before_spawn(|plan| {
///     plan.env("WORKER_LABEL", format!("{}-{}", plan.slot(), plan.generation()));
///     Ok(())
/// });
/// # drop(builder);
/// ```
#[derive(Debug)]
pub struct SpawnPlan {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) current_dir: Option<PathBuf>,
}

impl SpawnPlan {
    /// The slot the worker will take.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Each slot writes its own spool directory: a replacement reuses it.
    ///     plan.env("SPOOL_DIR", format!("/var/spool/app/{}", plan.slot()));
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn slot(&self) -> usize {
        self.slot
    }
    /// The generation the worker will belong to.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Generation 1 is the start; later ones come from rolling restarts (deploys).
    ///     let deploy = plan.generation() > 1;
    ///     plan.env("APP_DEPLOYED", if deploy { "1" } else { "0" });
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Sets an environment variable for this worker only.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // One port per slot for a debug endpoint that cannot be shared.
    ///     plan.env("DEBUG_PORT", (9000 + plan.slot()).to_string());
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Runs this worker in `dir` (e.g. the release directory a deploy just switched to).
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Resolved at each spawn: a deploy that switched the symlink is picked up.
    ///     plan.current_dir(std::fs::canonicalize("/srv/app/current")?);
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn current_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.current_dir = Some(dir.into());
        self
    }
}
