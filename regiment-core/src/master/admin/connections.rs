//! The admin listener's connections, each bounded whatever its client does or does not do.
//!
//! - A write that makes no progress for [`WRITE_DEADLINE`] ends the connection: a client that
//!   pipelines requests and never reads the answers cannot hold it.
//! - A connection lives at most [`MAX_LIFETIME`]; then it finishes the request it serves, if
//!   any, and closes (a keep-alive scraper reconnects).
//! - Headers must arrive within the header read timeout, which also ends an idle connection.
//! - At most [`MAX_CONNECTIONS`] are served at once. When all are taken, a new connection ends
//!   the one that has waited longest on its client (nothing read from it nor written to it),
//!   if that one has waited [`IDLE_BEFORE_EVICTION`]; otherwise it waits for one to end. A
//!   probe is answered as soon as its request arrives, so it never waits on its client: one
//!   user holding every connection open cannot keep it out, nor is a burst of legitimate
//!   clients refused.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::{AbortHandle, Id, JoinSet};
use tokio::time::Sleep;

/// Connections served at once.
pub(super) const MAX_CONNECTIONS: usize = 64;
/// How long a write may make no progress before the connection is ended.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How long a connection may live.
pub(super) const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// How long a connection must have waited on its client before a new one may take its place.
const IDLE_BEFORE_EVICTION: Duration = Duration::from_secs(1);

/// The connections being served, with when each last made progress.
pub(super) struct Connections {
    tasks: JoinSet<()>,
    served: HashMap<Id, (Arc<Progress>, AbortHandle)>,
    epoch: Instant,
}

impl Connections {
    pub(super) fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            served: HashMap::new(),
            epoch: Instant::now(),
        }
    }

    /// Serves `stream` with `serve`, once a slot is free: at once, or by ending the connection
    /// that waited longest on its client, or when one ends.
    pub(super) async fn serve<S, F, Fut>(&mut self, stream: S, serve: F)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: FnOnce(Bounded<S>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.reap();
        while self.tasks.len() >= MAX_CONNECTIONS {
            if self.evict_idlest() {
                // Its task ends at once (or another did meanwhile): a slot is free.
                if let Some(ended) = self.tasks.join_next_with_id().await {
                    self.forget(ended);
                }
                continue;
            }
            // Wait for a connection to end, or to have waited long enough on its client.
            tokio::select! {
                Some(ended) = self.tasks.join_next_with_id() => self.forget(ended),
                () = tokio::time::sleep(IDLE_BEFORE_EVICTION) => {}
            }
        }
        let progress = Arc::new(Progress {
            epoch: self.epoch,
            last_ms: AtomicU64::new(0),
        });
        progress.touch();
        let io = Bounded {
            inner: stream,
            progress: progress.clone(),
            write_stall: None,
        };
        let connection = serve(io);
        let task = self.tasks.spawn(async move {
            // `serve` closes the connection gracefully at the end of its lifetime; one whose
            // last answer is still being written then is ended all the same.
            let _ = tokio::time::timeout(MAX_LIFETIME + WRITE_DEADLINE, connection).await;
        });
        self.served.insert(task.id(), (progress, task));
    }

    /// Ends the connection that waited longest on its client, if it waited long enough; its
    /// slot is free once its task has been joined.
    fn evict_idlest(&mut self) -> bool {
        let idlest = self
            .served
            .iter()
            .map(|(id, (progress, _))| (*id, progress.idle()))
            .filter(|(_, idle)| *idle >= IDLE_BEFORE_EVICTION)
            .max_by_key(|(_, idle)| *idle);
        let Some((id, idle)) = idlest else {
            return false;
        };
        tracing::debug!(
            idle_ms = idle.as_millis(),
            "admin listener: every connection is taken; the one idle longest is closed"
        );
        if let Some((_, task)) = self.served.remove(&id) {
            task.abort();
        }
        true
    }

    /// Forgets the connections that ended.
    fn reap(&mut self) {
        while let Some(ended) = self.tasks.try_join_next_with_id() {
            self.forget(ended);
        }
    }

    fn forget(&mut self, ended: Result<(Id, ()), tokio::task::JoinError>) {
        let id = match ended {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        self.served.remove(&id);
    }
}

/// When a connection last read or wrote something.
struct Progress {
    epoch: Instant,
    /// Milliseconds from `epoch`.
    last_ms: AtomicU64,
}

impl Progress {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the connection last made progress.
    fn idle(&self) -> Duration {
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A connection's stream, which records its progress and fails a write that makes none for
/// [`WRITE_DEADLINE`].
pub(super) struct Bounded<S> {
    inner: S,
    progress: Arc<Progress>,
    /// Armed while a write is pending.
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl<S> Bounded<S> {
    /// Passes a write's result on, recording progress; a write pending for longer than the
    /// deadline is `TimedOut`.
    fn write_result<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.progress.touch();
            self.write_stall = None;
            return result;
        }
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_DEADLINE)));
        ready!(stall.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {WRITE_DEADLINE:?}"),
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if result.is_ready() {
            self.progress.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.write_result(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.write_result(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.write_result(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.write_result(cx, result)
    }
}

/// `inner` as a connection's stream, outside of any [`Connections`].
#[cfg(test)]
pub(super) fn bounded<S>(inner: S) -> Bounded<S> {
    let progress = Arc::new(Progress {
        epoch: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    Bounded {
        inner,
        progress,
        write_stall: None,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_does_not_read_times_out() {
        let (ours, mut client) = tokio::io::duplex(64);
        let mut io = super::bounded(ours);
        // While the client reads, writes go on, however long it all takes.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0; 1024];
            client.read_exact(&mut buf).await.unwrap();
            client
        });
        for _ in 0..16 {
            io.write_all(&[1; 64]).await.expect("read by the client");
            tokio::time::sleep(WRITE_DEADLINE / 2).await;
        }
        let _client = reader.await.unwrap();
        // Then it stops reading: the write that fills the buffer fails at the deadline.
        let started = tokio::time::Instant::now();
        let err = tokio::time::timeout(WRITE_DEADLINE * 3, io.write_all(&[2; 1024]))
            .await
            .expect("ended at the deadline")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(started.elapsed(), WRITE_DEADLINE);
    }
}
