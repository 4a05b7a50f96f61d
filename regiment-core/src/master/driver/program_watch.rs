//! Development reload ([`crate::Builder::watch_program`]): when the program file changes (a
//! rebuild), the workers roll, as on SIGHUP, so that `cargo build` in another terminal reloads a
//! running server.
//!
//! What is watched: the directory of the program path, of every symlink on the way to it (a
//! switched `current`), and of the file it resolves to, not recursively; only events naming one
//! of those files count (a build writes many other files beside the program). A change is taken
//! once no such event came for [`WATCH_DEBOUNCE`]: a linker writes the file in many pieces, and
//! rolling onto a half-written file would fail every start. It then rolls the workers only if
//! the file the path resolves to is another one than at the last roll (device, inode, size,
//! modification and change times): a burst of events, a `touch` aside, is one reload, and a file
//! opened or executed (each spawn) none. Should a roll still start on a file that is not ready,
//! its failed starts abort it and the last good program keeps serving, as for any deploy.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the program file must be left alone before a change rolls the workers: longer than
/// the pauses of a linker writing its output, short enough to feel immediate after a build.
pub(crate) const WATCH_DEBOUNCE: Duration = Duration::from_millis(500);

/// Watches `program`, if given: the receiver gets one message per change that should roll the
/// workers. Without a program it never gets any (its sender is gone).
pub(crate) fn start(program: Option<&Path>) -> std::io::Result<mpsc::UnboundedReceiver<()>> {
    let (reloads, reload_rx) = mpsc::unbounded_channel();
    let Some(program) = program else {
        return Ok(reload_rx);
    };
    let (events_tx, events) = mpsc::unbounded_channel();
    let watch = Watch::new(program, events_tx.clone())?;
    tracing::info!(target: "regiment", program = %program.display(), dirs = ?watch.dirs,
        "watching the program: a change rolls the workers");
    tokio::spawn(run(
        program.to_path_buf(),
        watch,
        events_tx,
        events,
        reloads,
    ));
    Ok(reload_rx)
}

/// Debounces the events, and asks for a reload when the program is another file. Ends when the
/// driver is gone.
async fn run(
    program: PathBuf,
    mut watch: Watch,
    events_tx: mpsc::UnboundedSender<Event>,
    mut events: mpsc::UnboundedReceiver<Event>,
    reloads: mpsc::UnboundedSender<()>,
) {
    let mut last = Identity::of(&program);
    loop {
        // The first event about the program.
        loop {
            tokio::select! {
                Some(e) = events.recv() => if watch.concerns(&e) { break },
                _ = reloads.closed() => return,
            }
        }
        // Then quiet: no event about it for the debounce.
        let mut quiet_at = tokio::time::Instant::now() + WATCH_DEBOUNCE;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(quiet_at) => break,
                Some(e) = events.recv() => if watch.concerns(&e) {
                    quiet_at = tokio::time::Instant::now() + WATCH_DEBOUNCE;
                },
                _ = reloads.closed() => return,
            }
        }
        // Watched anew: a switched symlink leads to another directory now. The new watcher is
        // in place before the old one goes, so no event falls between them.
        match Watch::new(&program, events_tx.clone()) {
            Ok(w) => watch = w,
            Err(e) => tracing::warn!(target: "regiment", program = %program.display(), error = %e,
                "cannot watch the program anew; watching the same directories"),
        }
        let Some(now) = Identity::of(&program) else {
            tracing::info!(target: "regiment", program = %program.display(),
                "the program is gone from its path: waiting for it to come back");
            continue;
        };
        if last.as_ref() == Some(&now) {
            continue;
        }
        let cause = now.change_from(last.as_ref());
        tracing::info!(target: "regiment", program = %program.display(), %cause,
            "the program changed (watch_program): rolling the workers");
        last = Some(now);
        if reloads.send(()).is_err() {
            return;
        }
    }
}

/// A watcher on the directories where a change of the program shows, and the file names there
/// that are the program's.
struct Watch {
    _watcher: RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
    names: BTreeSet<OsString>,
}

impl Watch {
    fn new(program: &Path, events: mpsc::UnboundedSender<Event>) -> std::io::Result<Self> {
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<Event>| match e {
            // An open, a read or a close without a write (each spawn executes the file) changes
            // nothing.
            Ok(e) if matches!(e.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write)) => {}
            Ok(e) => {
                let _ = events.send(e);
            }
            Err(e) => tracing::warn!(target: "regiment", error = %e, "watching the program"),
        })
        .map_err(std::io::Error::other)?;
        let (dirs, names) = places(program);
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", dir.display())))?;
        }
        Ok(Self {
            _watcher: watcher,
            dirs,
            names,
        })
    }

    fn concerns(&self, e: &Event) -> bool {
        e.paths
            .iter()
            .any(|p| p.file_name().is_some_and(|n| self.names.contains(n)))
    }
}

/// The directories and file names where a change of `program` shows: the path itself, every
/// symlink on the way (a `current` switched by a deploy), and the file it resolves to.
fn places(program: &Path) -> (BTreeSet<PathBuf>, BTreeSet<OsString>) {
    let mut places = vec![program.to_path_buf()];
    let mut prefix = PathBuf::new();
    for component in program.components() {
        prefix.push(component);
        if prefix.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
            places.push(prefix.clone());
        }
    }
    if let Ok(real) = std::fs::canonicalize(program) {
        places.push(real);
    }
    let mut dirs = BTreeSet::new();
    let mut names = BTreeSet::new();
    for p in places {
        if let (Some(dir), Some(name)) = (p.parent(), p.file_name()) {
            dirs.insert(dir.to_path_buf());
            names.insert(name.to_owned());
        }
    }
    (dirs, names)
}

/// Which file the program path resolves to, and which version of it.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Identity {
    fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            device: m.dev(),
            inode: m.ino(),
            size: m.size(),
            modified: (m.mtime(), m.mtime_nsec()),
            changed: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// What changed since `before`, for the log: `replaced (inode 12 -> 34)`.
    fn change_from(&self, before: Option<&Identity>) -> String {
        match before {
            Some(b) if (b.device, b.inode) != (self.device, self.inode) => {
                format!("replaced (inode {} -> {})", b.inode, self.inode)
            }
            Some(_) => format!("rewritten in place (inode {})", self.inode),
            None => format!("put back at the path (inode {})", self.inode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scratch_dir;

    #[test]
    fn a_switched_symlink_and_the_file_it_leads_to_are_watched() {
        let dir = scratch_dir("watch");
        std::fs::create_dir_all(dir.join("release-1")).unwrap();
        let dir = std::fs::canonicalize(dir).unwrap();
        std::fs::write(dir.join("release-1/app.bin"), "v1").unwrap();
        std::os::unix::fs::symlink("app.bin", dir.join("release-1/app")).unwrap();
        std::os::unix::fs::symlink("release-1", dir.join("current")).unwrap();
        let (dirs, names) = places(&dir.join("current/app"));
        assert_eq!(
            dirs,
            BTreeSet::from([dir.clone(), dir.join("current"), dir.join("release-1")])
        );
        assert_eq!(
            names,
            BTreeSet::from(["app".into(), "app.bin".into(), "current".into()])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
