//! What every example's `main` does around its server: logs on stderr (`RUST_LOG`, `info` by
//! default; colours only on a terminal), a tokio runtime, and an exit status that says how the
//! server ended.
//!
//! Nothing here panics when stderr is closed (`hello 2>&1 | head`): the log goes through
//! [`regiment_core::LogWriter`], which counts the lines it loses instead, so the master goes on
//! supervising and its workers go on draining.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// Runs `serve` (the example as master or worker) on a new multi-threaded runtime, after
/// installing the log. The future is built by the caller but runs only here, inside the
/// runtime and after the log is up. On error it prints `NAME: error` and exits with
/// [`regiment_axum::Error::exit_code`]: 75 for a worker whose drain outlived its deadline, 1
/// for any other error.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     examples::run::main("demo", async {
///         let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
///         regiment_axum::serve(app).await
///     })
/// }
/// ```
pub fn main<F>(name: &str, serve: F) -> ExitCode
where
    F: Future<Output = Result<(), regiment_axum::Error>>,
{
    main_on(Flavor::MultiThread, name, serve)
}

/// The kind of tokio runtime [`main_on`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// `Runtime::new()`: `TOKIO_WORKER_THREADS` threads, by default one per CPU (for
    /// regiment's workers, the share of the CPUs their master gives them).
    MultiThread,
    /// `Builder::new_current_thread()`: everything on the thread that calls it.
    CurrentThread,
}

/// [`main`] on a runtime of the given flavor.
pub fn main_on<F>(flavor: Flavor, name: &str, serve: F) -> ExitCode
where
    F: Future<Output = Result<(), regiment_axum::Error>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(regiment_core::LogWriter::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = match flavor {
        Flavor::MultiThread => tokio::runtime::Runtime::new(),
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                regiment_core::LogWriter::stderr(),
                "{name}: cannot start the runtime: {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(regiment_core::LogWriter::stderr(), "{name}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
