//! [`Builder`] to [`Config`]: each option checked under the name the user gave it, then grouped
//! for those who take them (see `settings.rs`).

use std::time::Duration;

use super::applied_overrides::{AppliedOverrides, Side};
use super::builder::{Builder, WorkerCount};
use super::canary_options::Canary;
use super::choices::EnvOverrides;
use super::restart_signals::check_restart_signals;
use super::settings::{
    AdminBind, Config, ControlSocketPath, ListenSettings, RolloutTriggers, SpawnSettings,
};
use crate::error::{Error, Result};
use crate::identity::Requested;
use crate::limits::{MAX_DURATION, MAX_WORKERS};
use crate::listen::{ListenAddr, MAX_UNIX_PATH};
use crate::master::policy::{BackoffConfig, PolicyConfig};

impl Builder {
    /// Applies the environment overrides (unless ignored), checks every option and resolves the
    /// program, the workers' identity and the admin address.
    pub(crate) fn into_config(self) -> Result<Config> {
        if self.env_overrides == EnvOverrides::Apply {
            let names: Vec<String> = std::env::vars_os()
                .filter_map(|(name, _)| name.into_string().ok())
                .collect();
            for warning in super::unknown_vars::unknown_variables(names.iter().map(String::as_str))
            {
                tracing::warn!(target: "regiment", "{warning}");
            }
        }
        self.into_config_from(&|name| std::env::var(name).ok())
    }

    /// [`Builder::into_config`] with `lookup` for the environment, so that tests give theirs.
    pub(super) fn into_config_from(
        mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        if self.env_overrides == EnvOverrides::Apply {
            super::overrides::apply(&mut self, lookup)?;
            super::overrides::note_passed_on_variables(&mut self.applied_overrides, lookup);
        }
        let workers = self.worker_count()?;
        self.check_durations()?;
        if self.max_surge == Some(0) {
            return Err(Error::invalid(
                "max_surge",
                0,
                "at least 1 replacement at a time",
            ));
        }
        self.check_backoff()?;
        if self.rollout_failures == 0 {
            return Err(Error::invalid("rollout_failure_limit", 0, "at least 1"));
        }
        check_restart_signals(&self.restart_signals)?;
        let applied = std::mem::take(&mut self.applied_overrides);
        if let Some(path) = &self.control_socket {
            let option = applied.name("control_socket", "REGIMENT_CONTROL_SOCKET");
            check_socket_path(option, path)?;
        }
        self.check_rollout_timeout(&applied)?;
        // Read once: the budget is a share of it, and the status shows it.
        let memory = super::budget_resolution::resolve(
            self.memory_budget,
            applied.name("memory_budget", "REGIMENT_MEMORY_BUDGET"),
            &crate::container::memory_limit(),
        )?;
        let bind_option = applied.name("bind", "REGIMENT_BIND");
        let mut binds = Vec::with_capacity(self.binds.len());
        for b in &self.binds {
            binds.push(
                b.parse::<ListenAddr>()
                    .map_err(|e| Error::invalid(bind_option, b, e))?,
            );
        }
        let requested = |option, var, value: Option<String>| {
            value.map(|value| Requested {
                option: applied.name(option, var),
                value,
            })
        };
        let worker_identity = crate::identity::resolve(
            requested(
                "worker_user",
                "REGIMENT_WORKER_USER",
                self.worker_user.take(),
            ),
            requested(
                "worker_group",
                "REGIMENT_WORKER_GROUP",
                self.worker_group.take(),
            ),
        )?;
        let program = super::program_path::resolve(self.program.take())?;
        // A variable beats whatever the program set, a command-line flag of its own included
        // (`REGIMENT_BIND` over `hello --bind`): said once, at start, so that it is never a
        // surprise.
        if let Some(set) = applied.summary() {
            tracing::info!(target: "regiment", "options set by the environment, over the program's own: {set}");
        }
        let process_name = self.process_name.take().unwrap_or_else(|| {
            program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "regiment".into())
        });
        let args = self
            .args
            .take()
            .unwrap_or_else(|| std::env::args_os().skip(1).collect());
        let control_socket = self.control_socket.take().map(|path| ControlSocketPath {
            option: applied.name("control_socket", "REGIMENT_CONTROL_SOCKET"),
            path,
        });
        let admin = self
            .admin_bind
            .take()
            .map(|addr| parse_admin_bind(applied.name("admin_bind", "REGIMENT_ADMIN_BIND"), &addr))
            .transpose()?;
        Ok(Config {
            policy: PolicyConfig {
                workers,
                drain_timeout: self.drain_timeout,
                start_timeout: self.start_timeout,
                max_surge: self.max_surge,
                backoff: BackoffConfig {
                    initial: self.backoff_initial,
                    max: self.backoff_max,
                    reset_after: self.backoff_reset,
                },
                rollout_failures: self.rollout_failures,
                heartbeat_timeout: self.heartbeat_timeout,
                unresponsive_grace: self.unresponsive_grace,
                canary: self.canary.map(Canary::check).transpose()?,
                rollout_settle: self.rollout_settle,
                rollout_timeout: self.rollout_timeout,
                readiness: self.readiness,
                memory_budget: memory.budget.map(|budget| budget.bytes),
            },
            spawn: SpawnSettings {
                program,
                args,
                env: self.env,
                before_spawn: self.before_spawn,
                process_name,
                identity: worker_identity,
                worker_env: self.worker_env,
                readiness: self.readiness,
                drain_timeout: self.drain_timeout,
                heartbeat_interval: self.heartbeat,
            },
            listen: ListenSettings {
                binds,
                bind_option,
                control_socket,
                admin,
            },
            triggers: RolloutTriggers {
                restart_signals: self.restart_signals,
                watch_program: self.watch_program,
            },
            memory,
            kill_report_timeout: self.kill_report_timeout,
        })
    }

    fn worker_count(&mut self) -> Result<usize> {
        let workers = match std::mem::replace(&mut self.workers, WorkerCount::Cpus) {
            // The CPUs this process may use (affinity and cgroup quota). A machine of more
            // CPUs than MAX_WORKERS still runs at most that many by default.
            WorkerCount::Cpus => crate::container::available_cpus().min(MAX_WORKERS),
            WorkerCount::Fixed(n) => n,
            WorkerCount::Computed(f) => f(),
        };
        if !(1..=MAX_WORKERS).contains(&workers) {
            return Err(Error::invalid(
                "workers",
                workers,
                format!("a number of workers from 1 to {MAX_WORKERS}"),
            ));
        }
        Ok(workers)
    }

    /// A rollout timeout that a rollout cannot meet however healthy it is (no longer than the
    /// canary's window and the settle time it must wait out) would abort every deploy.
    fn check_rollout_timeout(&self, applied: &AppliedOverrides) -> Result<()> {
        let Some(timeout) = self.rollout_timeout else {
            return Ok(());
        };
        let window = self.canary.map_or(Duration::ZERO, |c| c.window);
        let waits = window.saturating_add(self.rollout_settle);
        if timeout <= waits {
            return Err(Error::invalid(
                applied.name("rollout_timeout", "REGIMENT_ROLLOUT_TIMEOUT"),
                shown(timeout),
                format!(
                    "a time longer than the canary's window and the settle time together ({}), \
                     which every rollout waits out",
                    shown(waits)
                ),
            ));
        }
        Ok(())
    }

    /// Every duration at most [`MAX_DURATION`]; those that are deadlines or intervals above
    /// zero; a heartbeat timeout longer than the interval.
    fn check_durations(&self) -> Result<()> {
        for (option, d) in [
            ("drain_timeout", Some(self.drain_timeout)),
            ("start_timeout", Some(self.start_timeout)),
            ("heartbeat_interval", Some(self.heartbeat)),
            ("unresponsive_grace", Some(self.unresponsive_grace)),
            ("rollout_timeout", self.rollout_timeout),
        ] {
            let Some(d) = d else { continue };
            if d.is_zero() || d > MAX_DURATION {
                return Err(Error::invalid(
                    option,
                    humantime::format_duration(d),
                    "a duration above zero and at most 365 days, such as 30s",
                ));
            }
        }
        for (option, d) in [
            (
                "heartbeat_timeout",
                self.heartbeat_timeout.unwrap_or_default(),
            ),
            ("backoff", self.backoff_max),
            ("backoff", self.backoff_reset),
            ("rollout_settle", self.rollout_settle),
            ("kill_report_timeout", self.kill_report_timeout),
        ] {
            if d > MAX_DURATION {
                return Err(Error::invalid(
                    option,
                    humantime::format_duration(d),
                    "durations of at most 365 days",
                ));
            }
        }
        if let Some(timeout) = self.heartbeat_timeout
            && timeout <= self.heartbeat
        {
            return Err(self.applied_overrides.conflict(
                Side {
                    option: "heartbeat_timeout",
                    label: "`heartbeat_timeout`",
                    var: "REGIMENT_HEARTBEAT_TIMEOUT",
                    value: shown(timeout),
                    must: "a timeout longer than",
                },
                Side {
                    option: "heartbeat_interval",
                    label: "`heartbeat_interval`",
                    var: "REGIMENT_HEARTBEAT_INTERVAL",
                    value: shown(self.heartbeat),
                    must: "an interval shorter than",
                },
            ));
        }
        Ok(())
    }

    fn check_backoff(&self) -> Result<()> {
        if self.backoff_initial.is_zero() {
            return Err(Error::invalid(
                "backoff",
                "initial 0s",
                "an initial delay above zero, such as 100ms: doubled, zero stays zero",
            ));
        }
        if self.backoff_max < self.backoff_initial {
            return Err(self.applied_overrides.conflict(
                Side {
                    option: "backoff",
                    label: "`backoff`'s first delay",
                    var: "REGIMENT_BACKOFF_INITIAL",
                    value: shown(self.backoff_initial),
                    must: "a first delay no longer than",
                },
                Side {
                    option: "backoff",
                    label: "`backoff`'s longest delay",
                    var: "REGIMENT_BACKOFF_MAX",
                    value: shown(self.backoff_max),
                    must: "a longest delay at least",
                },
            ));
        }
        if self.backoff_reset.is_zero() {
            return Err(Error::invalid(
                "backoff",
                "reset_after 0s",
                "a reset_after above zero, such as 60s: how long a worker must stay up for its \
                 slot's delay to start over",
            ));
        }
        Ok(())
    }
}

/// A Unix socket's path must fit its address (`sun_path`): one longer could be bound by some
/// trick, but no client could connect to it, nor a later master tell whether it is stale.
fn check_socket_path(option: &'static str, path: &std::path::Path) -> Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_UNIX_PATH {
        return Err(Error::invalid(
            option,
            path.display(),
            format!(
                "a path of at most {MAX_UNIX_PATH} bytes, the most a Unix socket's address \
                 holds (sun_path, 108 bytes with its NUL); this one has {len}"
            ),
        ));
    }
    Ok(())
}

/// A duration as errors show it: `30s`, `1h`, `500ms`.
fn shown(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(super) fn parse_admin_bind(option: &'static str, addr: &str) -> Result<AdminBind> {
    let addr = addr.parse::<ListenAddr>().map_err(|e| {
        Error::invalid(
            option,
            addr,
            format!("an address for the admin endpoints, HOST:PORT or unix:PATH ({e})"),
        )
    })?;
    Ok(AdminBind { option, addr })
}
