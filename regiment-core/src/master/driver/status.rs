//! The public status snapshot: the policy's part of it, and the driver's own (the master's pid,
//! its program and start, the listeners, the admin address), on a wall clock anchored once.

use super::super::policy::WallClock;
use super::Driver;
use super::clock::read_wall_clock;
use crate::events::{MemoryStatus, Status};

impl Driver {
    /// Publishes the status known before `run`: listeners, generation, slots.
    pub(crate) fn publish_status(&mut self) {
        let wall = self.wall_clock();
        self.publish_status_at(wall);
    }

    /// The anchored wall clock, anchored anew only when the system clock was stepped or the
    /// master stalled (by more than a second), so that status times follow a corrected clock
    /// without jitter.
    pub(super) fn wall_clock(&mut self) -> WallClock {
        let now = read_wall_clock(self.clock.now());
        if now.unix_ms.abs_diff(self.wall.unix_ms(now.instant)) > 1000 {
            self.wall = now;
        }
        self.wall
    }

    pub(super) fn publish_status_at(&mut self, wall: WallClock) {
        let status = self.compose_status(wall);
        self.notifier.on_status(&status);
        self.status.send_replace(status);
    }

    /// The public status: the policy's books, and what only the driver knows.
    fn compose_status(&mut self, wall: WallClock) -> Status {
        let policy = self.policy.status(self.clock.now(), wall);
        Status {
            master_pid: std::process::id(),
            master_program: self.master_program.clone(),
            master_started_at_ms: self.started_at_ms,
            generation: policy.generation,
            good_generation: policy.good_generation,
            workers_wanted: policy.workers_wanted,
            rollout: policy.rollout,
            last_rollout: policy.last_rollout,
            last_upgrade: policy.last_upgrade,
            stopping: policy.stopping,
            listeners: self.addrs.clone(),
            admin: self.admin_addr.clone(),
            workers: policy.workers,
            slots: policy.slots,
            memory: MemoryStatus {
                budget: self.memory.budget,
                limit: self.memory.limit.clone(),
                total: policy.memory_total,
                master: policy.master_memory,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::time::{SystemTime, UNIX_EPOCH};

    use crate::{Builder, EnvOverrides};

    fn unix_ms() -> u64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        u64::try_from(since.as_millis()).unwrap()
    }

    /// Before `run`, the status names the file the master runs and when it was built, and a
    /// later status says the same (read once, not anew per status).
    #[test]
    fn the_status_shows_the_masters_program_and_when_it_started() {
        let before = unix_ms();
        let supervisor = Builder::new()
            .workers(1)
            .env_overrides(EnvOverrides::Ignore)
            .build()
            .expect("builds");
        let after = unix_ms();
        let status = supervisor.handle().status();
        let program = status.master_program.clone().expect("known on Linux");
        let exe = std::env::current_exe().unwrap();
        let meta = std::fs::metadata(&exe).unwrap();
        assert_eq!(program.path, exe.display().to_string());
        assert_eq!((program.device, program.inode), (meta.dev(), meta.ino()));
        let started = status.master_started_at_ms;
        assert!(
            before <= started && started <= after,
            "{before} {started} {after}"
        );
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["master_program"]["inode"], meta.ino());
        assert_eq!(json["master_started_at_ms"], started);
    }
}
