//! `regiment-bench`: runs the benchmark matrix of BENCHMARKS.md on the machine at hand and
//! writes its report.
//!
//! ```text
//! cargo run --release -p regiment-bench --bin regiment-bench              # everything, ~25 min
//! cargo run --release -p regiment-bench --bin regiment-bench -- --section throughput --rounds 5
//! ```
//!
//! It first builds what it measures (`cargo build --release` of `hello`, `plain_axum` and
//! `regiment-load`, unless `--no-build`), then runs each section and writes
//! `report.md` (the tables) and `report.json` (every run's figures) under `--out`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use regiment_bench::matrix::{
    self, Pinning, Settings, ballast, cores, engine, recycling, resources, restarts, sampling,
    scale, server, throughput,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Section {
    Throughput,
    /// The throughput section's rows of one worker, pinned where taskset can pin, the servers
    /// up throughout and loaded in turn (not in the default run; `--rounds 60 --duration 1s`).
    Engine,
    Recycling,
    Restarts,
    Resources,
    Scale,
    /// RSS, PSS and USS of `hello` with 4 workers, and the cost of reading smaps_rollup
    /// against statm (issue 24).
    Sampling,
}

#[derive(Debug, Parser)]
#[command(
    name = "regiment-bench",
    about = "Runs regiment's benchmark matrix here and writes its report"
)]
struct Args {
    /// Sections to run (repeatable; default all).
    #[arg(long = "section", value_enum)]
    sections: Vec<Section>,
    /// Rounds of each side-by-side comparison.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured time of each load run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before each.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Keep-alive connections of the generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Replacements in a row of the scale section.
    #[arg(long, default_value_t = 1000)]
    replacements: u64,
    /// Where report.md and report.json go.
    #[arg(long, default_value = "target/regiment-bench")]
    out: PathBuf,
    /// Use the binaries already built next to this one.
    #[arg(long)]
    no_build: bool,
    /// The engine section also loads this build of `hello` (criteria off), in the same rounds
    /// as the others: another commit's, to compare two builds side by side.
    #[arg(long, value_name = "PATH")]
    other_hello: Option<PathBuf>,
    /// Not a benchmark: hold this many MiB of touched heap until stdin closes (the sampling
    /// section's large process).
    #[arg(long, hide = true)]
    hold_memory_mib: Option<usize>,
}

fn build() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "examples",
            "--bin",
            "hello",
            "--bin",
            "plain_axum",
            "-p",
            "regiment-bench",
            "--bin",
            "regiment-load",
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build failed: {status}"))
    }
}

fn run(args: Args) -> Result<(), String> {
    if !args.no_build {
        build()?;
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .ok_or("cannot find this executable's directory")?;
    let bins = server::Binaries { dir };
    server::check(&bins)?;
    let sections = if args.sections.is_empty() {
        vec![
            Section::Throughput,
            Section::Recycling,
            Section::Restarts,
            Section::Resources,
            Section::Scale,
            Section::Sampling,
        ]
    } else {
        let mut s = args.sections.clone();
        s.sort();
        s.dedup();
        s
    };
    let settings = Settings {
        bins,
        rounds: args.rounds.max(1),
        duration: args.duration,
        warmup: args.warmup,
        connections: args.connections.max(1),
        cpus: cores::allowed(),
        pinning: if cores::taskset_available() {
            Pinning::Available
        } else {
            Pinning::Unavailable
        },
        replacements: args.replacements,
        other_hello: args.other_hello.clone(),
    };
    let started = std::time::SystemTime::now();
    let mut md = format!(
        "# regiment-bench report\n\n{}\n\nCommand: `regiment-bench {}`\n",
        matrix::machine(),
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    if settings.pinning == Pinning::Unavailable {
        md.push_str(
            "\nNo `taskset` here (or a single CPU): the pinned placement is not measured.\n",
        );
    }
    let mut json = serde_json::Map::new();
    let mut rate = None;
    for section in sections {
        // Each section: its heading, its key in the JSON, its Markdown and its JSON.
        let (heading, key, (section_md, section_json)) = match section {
            Section::Throughput => {
                let found = throughput::run(&settings)?;
                rate = Some(found.hello_rate);
                (
                    "Throughput and latency",
                    "throughput",
                    (found.markdown, found.json),
                )
            }
            Section::Engine => (
                "The engine at one worker",
                "engine",
                engine::run(&settings)?,
            ),
            Section::Recycling => {
                let rate = match rate {
                    Some(r) => r,
                    None => {
                        let mut quick = settings.clone();
                        quick.rounds = 1;
                        throughput::hello_rate(&quick)?
                    }
                };
                ("Recycling", "recycling", recycling::run(&settings, rate)?)
            }
            Section::Restarts => ("Rolling restarts", "restarts", restarts::run(&settings)?),
            Section::Resources => ("Resources", "resources", resources::run(&settings)?),
            Section::Scale => ("Scale", "scale", scale::run(&settings)?),
            Section::Sampling => (
                "Sampling private memory",
                "sampling",
                sampling::run(&settings)?,
            ),
        };
        md.push_str(&format!("\n## {heading}\n"));
        md.push_str(&section_md);
        json.insert(key.into(), section_json);
        // Written after each section, so that a long run shows its progress.
        write(&args.out, &md, &json)?;
    }
    let took = started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    md.push_str(&format!("\nTook {} min {} s.\n", took / 60, took % 60));
    write(&args.out, &md, &json)?;
    print!("{md}");
    eprintln!(
        "regiment-bench: report in {}",
        args.out.join("report.md").display()
    );
    Ok(())
}

fn write(
    out: &std::path::Path,
    md: &str,
    json: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    std::fs::write(out.join("report.md"), md)
        .map_err(|e| format!("cannot write the report: {e}"))?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(json).unwrap_or_default(),
    )
    .map_err(|e| format!("cannot write the report: {e}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(mib) = args.hold_memory_mib {
        ballast::hold(mib);
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("regiment-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
