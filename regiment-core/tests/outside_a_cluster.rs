//! Outside a regiment cluster, every worker call is a harmless no-op and the process is told
//! so once: one warning, however many calls. Its own test binary (its own process), so that no
//! other test's call can have used up the warning first.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regiment_core::worker;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_call_is_a_no_op_and_one_warning_says_so() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();

    assert!(!worker::is_worker());
    assert_eq!(worker::slot(), None);
    assert!(!worker::request_replacement("first"));
    assert!(!worker::request_replacement("second"));
    worker::ready();
    worker::listening();
    regiment_core::plumbing::start_heartbeat();
    assert!(worker::stats().is_none());
    // The drain signal never comes outside a cluster.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), worker::drained())
            .await
            .is_err()
    );
    // Nor do the listeners of a process that inherited none.
    assert!(regiment_core::listen::take_inherited().unwrap().is_empty());

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("not running as a regiment worker"),
        "{text}"
    );
}
