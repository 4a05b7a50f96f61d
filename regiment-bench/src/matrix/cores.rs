//! Which CPUs a process may run on: all of them, or a set given to `taskset`, so that the
//! load generator and the server do not take each other's cores.

use std::path::Path;
use std::process::Command;

/// The CPUs of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cores {
    /// Wherever the scheduler puts it.
    All,
    /// Only these CPUs.
    Only(Vec<usize>),
}

impl Cores {
    /// A command that runs `program` on these CPUs.
    pub fn command(&self, program: &Path) -> Command {
        match self {
            Cores::All => Command::new(program),
            Cores::Only(cpus) => {
                let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
                let mut cmd = Command::new("taskset");
                cmd.arg("--cpu-list").arg(list.join(",")).arg(program);
                cmd
            }
        }
    }

    /// How many CPUs, out of the `online` ones.
    pub fn count(&self, online: usize) -> usize {
        match self {
            Cores::All => online,
            Cores::Only(cpus) => cpus.len(),
        }
    }

    /// For tables: `all` or the CPU list.
    pub fn label(&self) -> String {
        match self {
            Cores::All => "all".to_string(),
            Cores::Only(cpus) => cpus
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// The CPUs this process may run on, in order.
pub fn allowed() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// Whether `taskset` can be run here.
pub fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
