//! The [`Builder`] options of what workers run, and as whom: program, arguments, environment,
//! spawn hook, process name, user and group.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use super::builder::Builder;
use super::inherited_env::WorkerEnv;
use super::spawn_plan::SpawnPlan;

impl Builder {
    /// An environment variable for every worker, on top of the master's own environment (see
    /// [`Builder::worker_env`]); it replaces a variable of the same name the master has.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Only workers see these: the master itself keeps its own environment.
    /// let builder = Builder::new()
    ///     .env("APP_ENV", "production")
    ///     .env("RUST_LOG", "info");
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The arguments of workers (default: the master's own arguments).
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // The master is `app supervise --workers 4`; its workers run `app serve`.
    /// let builder = Builder::new().args(["serve"]);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// The program to run as workers (default: this program, as it was started: the path the
    /// shell ran, found through `PATH` if it had no slash, with its symlinks kept).
    ///
    /// The path is opened when the master starts and again at each rolling restart, following
    /// its symlinks then, and workers execute the file opened, through its descriptor: a deploy
    /// that renames a new file over the path, or switches a `current` symlink, is picked up by
    /// the next rolling restart, not by a worker that merely respawns. A script (`#!`) cannot
    /// be executed that way: it is executed by path, with a warning at start.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides, Error};
    /// // Checked at build: a missing program is an error before any spawn, not a crash loop.
    /// let err = Builder::new()
    ///     .program("/nonexistent/app")
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Program { .. }));
    /// ```
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// A hook the master runs before each spawn, e.g. to pick the release directory. An error
    /// (or a panic) counts as a failed start, retried with backoff. It runs on the supervisor's
    /// own loop: keep it quick (no network call), as nothing else is supervised while it runs.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Workers start in the release the `current` symlink points to now.
    ///     let release = std::fs::canonicalize("/srv/app/current")?;
    ///     plan.current_dir(release);
    ///     plan.env("WORKER_LABEL", format!("slot{}-gen{}", plan.slot(), plan.generation()));
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn before_spawn<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut SpawnPlan) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
            + Send
            + Sync
            + 'static,
    {
        self.before_spawn = Some(Arc::new(hook));
        self
    }

    /// The name workers show in `ps` as `NAME worker SLOT gen GENERATION` (default: the
    /// program's file name).
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // `ps` shows `shop worker 0 gen 1`, not the file name of a versioned binary.
    /// let builder = Builder::new().process_name("shop");
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = Some(name.into());
        self
    }

    /// The user workers run as, by name or numeric uid (default: the master's user). A master
    /// started as root (to bind port 80, say) switches each worker, between fork and exec, to
    /// the user's group (or [`Builder::worker_group`]) with no other group, then to the user; a
    /// spawn whose switch fails fails (the worker never runs as root). Workers get the user's
    /// `HOME`, `USER` and `LOGNAME` (a configured value still wins). The program must be
    /// readable and executable by that user; the listeners are inherited, so a port below 1024
    /// or a socket file in a directory only root can enter still serves.
    ///
    /// Resolved at build: an unknown user, a uid without an entry in the user database and no
    /// group, or a master that is not root asking for another user than its own is an error.
    /// `REGIMENT_WORKER_USER` overrides it.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let builder = Builder::new()
    ///     .worker_user("no-such-user")
    ///     .env_overrides(EnvOverrides::Ignore);
    /// let err = builder.build().unwrap_err().to_string();
    /// assert!(err.contains("`worker_user`") && err.contains("no-such-user"));
    /// ```
    pub fn worker_user(mut self, user: impl Into<String>) -> Self {
        self.worker_user = Some(user.into());
        self
    }

    /// The group workers run as, by name or numeric gid (default: the primary group of
    /// [`Builder::worker_user`], else the master's group). `REGIMENT_WORKER_GROUP` overrides it.
    ///
    /// ```
    /// use regiment_core::Builder;
    /// // Workers of user `www` run in group `app`, which may read the release directory.
    /// let builder = Builder::new().worker_user("www").worker_group("app");
    /// # drop(builder);
    /// ```
    pub fn worker_group(mut self, group: impl Into<String>) -> Self {
        self.worker_group = Some(group.into());
        self
    }

    /// The environment workers start from (default [`WorkerEnv::Inherit`], the master's).
    /// `REGIMENT_WORKER_ENV` (`inherit`, `only-configured`) overrides it.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides, WorkerEnv};
    /// // Workers see APP_ENV and regiment's own variables (those workers read, such as
    /// // REGIMENT_HEADER_READ_TIMEOUT, included), nothing else of the master's.
    /// let builder = Builder::new().worker_env(WorkerEnv::OnlyConfigured).env("APP_ENV", "prod");
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn worker_env(mut self, env: WorkerEnv) -> Self {
        self.worker_env = env;
        self
    }
}
