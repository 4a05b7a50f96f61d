//! regiment-core without HTTP: a line-echo service run by N supervised workers.
//!
//! ```text
//! cargo run -p examples --bin echo_cluster -- 127.0.0.1:4000 2
//! printf 'hello\n' | nc 127.0.0.1 4000        # -> "worker 1 (pid 4242): hello"
//! kill -HUP <master pid>                       # rolling restart, no connection lost
//! ```
//!
//! The same program is master and worker: `regiment_core::role()` tells which. The master binds
//! the address and supervises; each worker takes the inherited listener, reports that it
//! listens, and on `drained()` stops accepting and finishes the connections it has.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use regiment_core::listen::{Listener, take_inherited};
use regiment_core::{Role, worker};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A log that never fails: a closed stderr must not stop the master (see LogWriter).
    tracing_subscriber::fmt()
        .with_writer(regiment_core::LogWriter::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:4000".into());
    let workers: usize = args.next().map_or(Ok(2), |n| n.parse())?;

    match regiment_core::role() {
        Role::Master => {
            let supervisor = regiment_core::Builder::new()
                .workers(workers)
                .bind(&bind)
                .build()?;
            let _ = writeln!(
                regiment_core::LogWriter::stdout(),
                "echo_cluster: master {} listening on {bind}; `kill -HUP {0}` rolls the workers, Ctrl+C stops",
                std::process::id()
            );
            supervisor.run().await?;
        }
        Role::Worker => serve().await?,
    }
    Ok(())
}

async fn serve() -> std::io::Result<()> {
    let Some(Listener::Tcp(listener)) = take_inherited()?.into_iter().next() else {
        return Err(std::io::Error::other("expected one inherited TCP listener"));
    };
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let connections = tokio_util::task::TaskTracker::new();
    worker::listening();
    let drained = worker::drained();
    tokio::pin!(drained);
    loop {
        tokio::select! {
            _ = &mut drained => break,
            Ok((stream, _)) = listener.accept() => {
                connections.spawn(echo(stream));
            }
        }
    }
    // Stop accepting now: connections still queued are taken by the other workers.
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

async fn echo(stream: tokio::net::TcpStream) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let me = format!(
        "worker {} (pid {})",
        worker::slot().unwrap_or(0),
        std::process::id()
    );
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await
    {
        if w.write_all(format!("{me}: {line}\n").as_bytes())
            .await
            .is_err()
            || worker::is_draining()
        {
            break;
        }
    }
}
