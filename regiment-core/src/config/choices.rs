//! The two-way options of the [`Builder`](super::Builder), as enums whose variants say what
//! happens, so that a call reads `.env_overrides(EnvOverrides::Ignore)`, not `(false)`.

/// Whether the `REGIMENT_*` environment variables override the options set in code
/// ([`crate::Builder::env_overrides`]).
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// // An embedded master (or a test) runs with what the code says, whatever REGIMENT_* holds.
/// let supervisor = Builder::new().workers(2).env_overrides(EnvOverrides::Ignore).build()?;
/// assert_eq!(supervisor.handle().status().workers_wanted, 2);
/// # Ok::<(), regiment_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnvOverrides {
    /// A variable that is set replaces the option (the default).
    #[default]
    Apply,
    /// The variables are not read: the options are those set in code.
    Ignore,
}

/// What the master does when its program file changes ([`crate::Builder::watch_program`]).
///
/// ```no_run
/// use regiment_core::WatchProgram;
/// # async fn run() -> Result<(), regiment_core::Error> {
/// // Development builds reload on `cargo build`; release builds never watch.
/// let watch = if cfg!(debug_assertions) { WatchProgram::Reload } else { WatchProgram::Off };
/// let supervisor = regiment_core::Builder::new().watch_program(watch).build()?;
/// supervisor.run().await
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchProgram {
    /// Nothing: the file is not watched (the default).
    #[default]
    Off,
    /// The workers roll, as on SIGHUP, once the changed file was left alone for half a second.
    Reload,
}
