//! The supervisor's options on [`Server`]: each method is the [`regiment_core::Builder`] method
//! of the same name (with its default and its `REGIMENT_*` override), so that a server is set up
//! in one chain. [`Server::supervisor`] and [`Server::with_builder`] reach the builder itself.
//!
//! ```no_run
//! use std::time::Duration;
//! use regiment_axum::regiment_core::{Canary, MemoryBudget, WorkerEnv};
//!
//! # async fn run(app: axum::Router) -> Result<(), regiment_axum::Error> {
//! regiment_axum::Server::new()
//!     .workers(8)
//!     .max_surge(2)
//!     .backoff(Duration::from_millis(50), Duration::from_secs(5), Duration::from_secs(60))
//!     .canary(Canary::new().window(Duration::from_secs(30)))
//!     .worker_user("www-data")
//!     .worker_env(WorkerEnv::OnlyConfigured)
//!     .env("APP_ENV", "production")
//!     .admin_bind("127.0.0.1:9100")
//!     .memory_budget(MemoryBudget::percent_of_limit(80))
//!     .serve(app)
//!     .await
//! # }
//! ```

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use regiment_core::{Canary, MemoryBudget, Readiness, Signal, SpawnPlan, WatchProgram, WorkerEnv};

use crate::Server;

/// What a [`Server::before_spawn`] hook returns.
type HookResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// `name(args);` rows, each a method that hands its arguments to the builder's `name`.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        impl Server {
            $(
                #[doc = concat!("[`regiment_core::Builder::", stringify!($name), "`].")]
                pub fn $name(self, $($arg: $ty),*) -> Self {
                    self.supervisor(|b| b.$name($($arg),*))
                }
            )*
        }
    };
}

forward! {
    workers_with(f: impl FnOnce() -> usize + Send + 'static);
    max_surge(n: usize);
    backoff(initial: Duration, max: Duration, reset_after: Duration);
    rollout_failure_limit(n: u32);
    rollout_settle(d: Duration);
    readiness(r: Readiness);
    restart_signals(signals: impl IntoIterator<Item = Signal>);
    env(key: impl Into<OsString>, value: impl Into<OsString>);
    args(args: impl IntoIterator<Item = impl Into<OsString>>);
    program(path: impl Into<PathBuf>);
    before_spawn(hook: impl Fn(&mut SpawnPlan) -> HookResult + Send + Sync + 'static);
    process_name(name: impl Into<String>);
    heartbeat_interval(d: Duration);
    heartbeat_timeout(d: Duration);
    canary(canary: Canary);
    control_socket(path: impl Into<PathBuf>);
    worker_user(user: impl Into<String>);
    worker_group(group: impl Into<String>);
    worker_env(env: WorkerEnv);
    admin_bind(addr: impl Into<String>);
    watch_program(watch: WatchProgram);
    memory_budget(budget: MemoryBudget);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EnvOverrides;

    /// A setting of one option.
    type Set = fn(Server) -> Server;

    /// This test process is not a worker: `serve` builds the supervisor, which refuses each of
    /// these values under the option's name, so each reached the builder.
    #[tokio::test]
    async fn each_option_reaches_the_supervisor_builder() {
        let refused: [(&str, Set); 6] = [
            ("max_surge", |s| s.max_surge(0)),
            ("rollout_failure_limit", |s| s.rollout_failure_limit(0)),
            ("backoff", |s| {
                s.backoff(Duration::ZERO, Duration::ZERO, Duration::ZERO)
            }),
            ("heartbeat_timeout", |s| {
                s.heartbeat_interval(Duration::from_secs(2))
                    .heartbeat_timeout(Duration::from_secs(1))
            }),
            ("restart_signals", |s| s.restart_signals([Signal::SIGTERM])),
            ("memory_budget", |s| {
                s.memory_budget(MemoryBudget::percent_of_limit(0))
            }),
        ];
        for (option, set) in refused {
            let server = set(Server::new().workers(1).bind("127.0.0.1:0"))
                .env_overrides(EnvOverrides::Ignore)
                .on_master(|_| panic!("refused options start nothing"));
            let err = server.serve(axum::Router::new()).await.unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{option}`")),
                "{option}: {err}"
            );
        }
    }
}
