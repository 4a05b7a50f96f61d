//! Sampling private memory for the memory budget (issue 24): what each measure says of a
//! regiment (`hello` with 4 workers: RSS, PSS and USS of the master and each worker, their sums,
//! and the pages they hold counted once), and what one reading costs ([`super::sampling_cost`]:
//! `smaps_rollup` against `statm`, on a `hello` worker and on processes holding 200 MiB and
//! 1 GiB).

use std::time::Duration;

use regiment_core::plumbing::{MemorySampler, PrivateMemory};

use super::ballast::Ballast;
use super::cores::Cores;
use super::sampling_cost::{self, Target};
use super::server::{self, HelloSetup, Running, Server};
use super::{Settings, table};
use crate::procfs;

/// Workers of the regiment measured.
const WORKERS: usize = 4;

/// Heaps of the large processes whose readings are timed, MiB: the cost of `smaps_rollup`
/// grows with them.
const BALLASTS_MIB: [usize; 2] = [200, 1024];

/// Each method's window of readings, per target and round.
const WINDOW: Duration = Duration::from_millis(200);

fn mb(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1048576.0)
}

/// Anonymous resident memory from `/proc/PID/statm`, bytes: `resident - shared`, the second and
/// third fields (`shared` counts the file-backed and shmem pages), in pages.
fn statm_anon(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let mut fields = text.split_whitespace().skip(1).map(str::parse::<u64>);
    let (resident, shared) = (fields.next()?.ok()?, fields.next()?.ok()?);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()? as u64;
    Some(resident.checked_sub(shared)? * page)
}

/// One process's reading.
struct Reading {
    /// `master` or `worker N`.
    role: String,
    pid: u32,
    /// Its `smaps_rollup`.
    memory: PrivateMemory,
    /// Its anonymous memory by `statm`.
    anon: Option<u64>,
}

/// The master and its workers, each read once.
fn read_all(running: &Running) -> Result<Vec<Reading>, String> {
    let master = running.pid();
    let mut sampler = MemorySampler::new();
    let mut all = Vec::new();
    for (i, pid) in std::iter::once(master)
        .chain(procfs::children(master))
        .enumerate()
    {
        let role = if i == 0 {
            "master".to_string()
        } else {
            format!("worker {i}")
        };
        all.push(Reading {
            role,
            pid,
            memory: sampler.read(pid).map_err(|e| e.to_string())?,
            anon: statm_anon(pid),
        });
    }
    Ok(all)
}

/// The table of one reading of every process, with their sums.
fn footprint_table(all: &[Reading], once_kb: Option<u64>) -> String {
    let mut rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            let m = &r.memory;
            vec![
                r.role.clone(),
                mb(m.rss),
                mb(m.pss),
                mb(m.uss),
                mb(m.shared),
                r.anon.map_or_else(|| "n/a".into(), mb),
            ]
        })
        .collect();
    let sum = |f: fn(&PrivateMemory) -> u64| all.iter().map(|r| f(&r.memory)).sum::<u64>();
    rows.push(vec![
        "**sum**".into(),
        format!("**{}**", mb(sum(|m| m.rss))),
        format!("**{}**", mb(sum(|m| m.pss))),
        format!("**{}**", mb(sum(|m| m.uss))),
        mb(sum(|m| m.shared)),
        mb(all.iter().filter_map(|r| r.anon).sum()),
    ]);
    let mut md = table(
        &[
            "process",
            "RSS MB",
            "PSS MB",
            "USS MB",
            "shared MB",
            "anonymous by `statm` MB",
        ],
        &rows,
    );
    md.push_str(&format!(
        "\nTheir resident pages, each counted once (`/proc/PID/pagemap`; what a cgroup holding only them would be charged for their mappings): {}.\n",
        once_kb.map_or_else(
            || "n/a (needs CAP_SYS_ADMIN)".to_string(),
            |kb| format!("{} MB", mb(kb * 1024))
        )
    ));
    md
}

/// Runs the section.
pub fn run(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    eprintln!("regiment-bench: sampling: hello, {WORKERS} workers");
    let running = server::start(
        &settings.bins,
        &Server::Hello(HelloSetup::steady(WORKERS)),
        &Cores::All,
    )?;
    // A second for the workers' samplers and heartbeats to start, as the resources section.
    std::thread::sleep(Duration::from_secs(1));
    let at_rest = read_all(&running)?;
    let pids: Vec<u32> = at_rest.iter().map(|r| r.pid).collect();
    let once_at_rest = procfs::resident_once_kb(&pids);
    eprintln!("regiment-bench: sampling: the standard load");
    settings.run_load(&Cores::All, running.addr)?;
    let after_load = read_all(&running)?;
    let once_after_load = procfs::resident_once_kb(&pids);

    let program = std::env::current_exe().map_err(|e| format!("this program: {e}"))?;
    let ballasts = BALLASTS_MIB
        .iter()
        .map(|&mib| Ballast::start(&program, mib).map(|b| (mib, b)))
        .collect::<Result<Vec<_>, _>>()?;
    let worker = at_rest[1].pid;
    let mut sampler = MemorySampler::new();
    let mut size = |pid| {
        sampler
            .read(pid)
            .map(|m| format!("RSS {} MB", mb(m.rss)))
            .map_err(|e| e.to_string())
    };
    let mut targets = vec![Target {
        label: format!("a `hello` worker, after the load ({})", size(worker)?),
        pid: worker,
    }];
    for (mib, ballast) in &ballasts {
        targets.push(Target {
            label: format!("a process holding {mib} MiB ({})", size(ballast.pid())?),
            pid: ballast.pid(),
        });
    }
    let timings = sampling_cost::measure(&targets, settings.rounds, WINDOW)?;
    drop(ballasts);
    running.stop();

    let mut md = format!(
        "\n`hello`, {WORKERS} workers, criteria on, unpinned: every process read once by `MemorySampler`, 1 s after start-up (at rest), then after the standard load ({} connections, keep-alive, {} s).\n\nAt rest:\n\n",
        settings.connections,
        settings.duration.as_secs_f64()
    );
    md.push_str(&footprint_table(&at_rest, once_at_rest));
    md.push_str("\nAfter the load:\n\n");
    md.push_str(&footprint_table(&after_load, once_after_load));
    md.push_str(&format!(
        "\nOne reading, by method ({} rounds, each method {} ms of readings per process and round, in turn; medians over rounds, [range]; CPU is the reading thread's; the share is one reading of one process every period, of one CPU); load average after: {}\n\n",
        settings.rounds,
        WINDOW.as_millis(),
        super::loadavg()
    ));
    md.push_str(&sampling_cost::table(&targets, &timings));
    let json_of = |all: &[Reading]| {
        all.iter()
            .map(|r| {
                let m = &r.memory;
                serde_json::json!({
                    "process": r.role, "pid": r.pid, "rss": m.rss, "pss": m.pss, "uss": m.uss,
                    "shared": m.shared, "swap": m.swap, "swap_pss": m.swap_pss,
                    "statm_anonymous": r.anon,
                })
            })
            .collect::<Vec<_>>()
    };
    let json = serde_json::json!({
        "at_rest": json_of(&at_rest),
        "at_rest_resident_once_kb": once_at_rest,
        "after_load": json_of(&after_load),
        "after_load_resident_once_kb": once_after_load,
        "cost": targets.iter().zip(&timings).map(|(t, per_method)| serde_json::json!({
            "process": t.label,
            "methods": sampling_cost::Method::ALL.iter().zip(per_method)
                .map(|(m, rounds)| serde_json::json!({ "method": m, "rounds": rounds }))
                .collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    Ok((md, json))
}
