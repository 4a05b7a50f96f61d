//! The public status snapshot: the policy's part of it, and the driver's own (the master's pid,
//! the listeners, the admin address), on a wall clock anchored once.

use super::super::policy::WallClock;
use super::Driver;
use super::clock::read_wall_clock;
use crate::events::Status;

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
            generation: policy.generation,
            good_generation: policy.good_generation,
            workers_wanted: policy.workers_wanted,
            rollout: policy.rollout,
            last_rollout: policy.last_rollout,
            stopping: policy.stopping,
            listeners: self.addrs.clone(),
            admin: self.admin_addr.clone(),
            workers: policy.workers,
            slots: policy.slots,
        }
    }
}
