//! What the unit tests of several modules share.

use std::path::PathBuf;

/// A fresh, empty directory for one test (the tests run in parallel, in one process):
/// `$TMPDIR/regiment-<name>-<pid>`, whatever an earlier run left there removed first.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("regiment-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What `f` logs, as text (`WARN regiment: ...`), through a subscriber of this thread only,
/// so that tests running in parallel do not see each other's lines.
pub(crate) fn capture_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // tracing caches whether a callsite has any subscriber the first time it is hit: hit first on
    // a thread with none (another test logging the same line), it would stay silent here too. A
    // global subscriber that takes every line (and drops it) keeps each callsite asked anew.
    static EVERY_LINE: std::sync::Once = std::sync::Once::new();
    EVERY_LINE.call_once(|| {
        let drop_all = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::sink)
            .finish();
        let _ = tracing::subscriber::set_global_default(drop_all);
    });
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&lines.0.lock().unwrap()).into_owned();
    (out, text)
}
