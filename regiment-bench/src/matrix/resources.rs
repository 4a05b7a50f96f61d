//! Memory and CPU at rest: the master alone, and master plus workers (RSS summed, PSS, and
//! their resident pages counted once).

use std::time::{Duration, Instant};

use super::server::{self, HelloSetup, Runtime, Server};
use super::{Settings, table};
use crate::procfs;

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

/// Runs the section.
pub fn run(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    let hello = |workers, runtime| {
        Server::Hello(HelloSetup {
            runtime,
            ..HelloSetup::steady(workers)
        })
    };
    let servers = [
        Server::Plain,
        hello(1, Runtime::Default),
        hello(2, Runtime::Default),
        hello(2, Runtime::MultiThread(1)),
        hello(2, Runtime::CurrentThread),
    ];
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for s in &servers {
        eprintln!("regiment-bench: resources: {}", s.label());
        let running = server::start(&settings.bins, s, &super::cores::Cores::All)?;
        let pid = running.pid();
        // Let start-up settle (a second of the workers' samplers and heartbeats), then
        // measure five seconds at rest.
        std::thread::sleep(Duration::from_secs(1));
        let cpu_before = procfs::cpu_seconds(pid).unwrap_or(0.0);
        let began = Instant::now();
        std::thread::sleep(Duration::from_secs(5));
        let cpu =
            (procfs::cpu_seconds(pid).unwrap_or(0.0) - cpu_before) / began.elapsed().as_secs_f64();
        let f = procfs::footprint(pid);
        let threads = procfs::threads(pid).unwrap_or(0);
        running.stop();
        rows.push(vec![
            s.label(),
            f.processes.to_string(),
            mb(f.master_rss_kb),
            threads.to_string(),
            format!("{:.2}%", cpu * 100.0),
            mb(f.total_rss_kb),
            mb(f.total_pss_kb),
            // Without CAP_SYS_ADMIN, or when a process went away while it was read.
            f.resident_once_kb.map_or_else(|| "n/a".into(), mb),
        ]);
        json.push(serde_json::json!({
            "server": s.label(), "footprint": f, "first_process_threads": threads,
            "first_process_cpu_share": cpu,
        }));
    }
    let mut md = format!(
        "\nAt rest after start-up (5 s); \"first process\" is regiment's master (or the plain server); load average after: {}\n\n",
        super::loadavg()
    );
    md.push_str(&table(
        &[
            "server",
            "processes",
            "first process RSS MB",
            "its threads",
            "its CPU",
            "all RSS MB",
            "all PSS MB",
            "all resident MB, each page once",
        ],
        &rows,
    ));
    Ok((md, serde_json::Value::Array(json)))
}
