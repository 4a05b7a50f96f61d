//! RSS through sysinfo, where there is no `/proc`.

use std::io;

/// RSS through sysinfo: the portable path, used where there is no `/proc`.
pub(super) struct SysinfoRss {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
}

impl SysinfoRss {
    pub(super) fn new() -> Self {
        Self {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    pub(super) fn read(&mut self) -> io::Result<u64> {
        let pid = self
            .pid
            .ok_or_else(|| io::Error::other("sysinfo: no pid for this process"))?;
        // This process is alive while it asks: nothing dead to remove.
        let remove_dead_processes = false;
        self.system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            remove_dead_processes,
            sysinfo::ProcessRefreshKind::nothing().with_memory(),
        );
        self.system
            .process(pid)
            .map(|p| p.memory())
            .filter(|b| *b > 0)
            .ok_or_else(|| io::Error::other("sysinfo: this process not found"))
    }
}
