//! The kill reports the master keeps: the last [`KillReport::KEPT`], numbered from 1. The
//! driver adds them; every [`crate::Handle`] (and so the control socket and the admin
//! listener) reads them.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::events::KillReport;

/// The last reports taken; shared by the driver and every handle.
#[derive(Debug, Default)]
pub(crate) struct KillReports {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// Reports taken so far: the last one's id.
    taken: u64,
    reports: VecDeque<KillReport>,
}

impl KillReports {
    /// Keeps `report` under the next id (the oldest goes past [`KillReport::KEPT`]), and
    /// returns it with its id.
    pub(crate) fn keep(&self, mut report: KillReport) -> KillReport {
        let mut kept = self.lock();
        kept.taken += 1;
        report.id = kept.taken;
        if kept.reports.len() == KillReport::KEPT {
            kept.reports.pop_front();
        }
        kept.reports.push_back(report.clone());
        report
    }

    /// The reports kept, oldest first.
    pub(crate) fn list(&self) -> Vec<KillReport> {
        self.lock().reports.iter().cloned().collect()
    }

    /// Report `id`, if it is still kept.
    pub(crate) fn get(&self, id: u64) -> Option<KillReport> {
        self.lock().reports.iter().find(|r| r.id == id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // The books stay whole whatever panicked while holding them: each change is one push.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pid: u32) -> KillReport {
        KillReport {
            id: 0,
            at_ms: 0,
            slot: 0,
            pid,
            generation: 1,
            why: "drain deadline".into(),
            rss: None,
            complete: true,
            threads_left_out: 0,
            threads: Vec::new(),
            worker_answered: false,
            requests: Vec::new(),
            requests_left_out: 0,
        }
    }

    #[test]
    fn the_last_sixteen_are_kept_numbered_from_one() {
        let store = KillReports::default();
        assert!(store.list().is_empty());
        assert_eq!(store.keep(report(100)).id, 1);
        for pid in 101..120 {
            store.keep(report(pid));
        }
        let kept = store.list();
        assert_eq!(kept.len(), KillReport::KEPT);
        assert_eq!(kept.first().map(|r| (r.id, r.pid)), Some((5, 104)));
        assert_eq!(kept.last().map(|r| (r.id, r.pid)), Some((20, 119)));
        assert_eq!(store.get(4), None, "gone past the bound");
        assert_eq!(store.get(5).map(|r| r.pid), Some(104));
    }
}
