//! The memory readers: each figure read from where this system keeps it, the files opened on
//! first use and kept open.

use std::io;

use super::Measure;
#[cfg(target_os = "linux")]
use super::smaps_rollup::SmapsRollup;
#[cfg(not(target_os = "linux"))]
use super::sysinfo_rss::SysinfoRss;

/// The figures read in one round, by [`Measure`] index (`None`: not read).
pub(super) type Fresh = [Option<u64>; 3];

/// The readers, opened on first use and kept open. A reader that fails to open is not retried
/// (the file will not appear later) and is reported once.
#[derive(Default)]
pub(super) struct Readers {
    #[cfg(target_os = "linux")]
    statm: Opened<regiment_core::plumbing::Statm>,
    #[cfg(target_os = "linux")]
    smaps: Opened<SmapsRollup>,
    #[cfg(not(target_os = "linux"))]
    sysinfo: Option<SysinfoRss>,
    warned: [bool; 3],
}

/// A reader's file, opened at its first read.
#[cfg(target_os = "linux")]
#[derive(Default)]
enum Opened<R> {
    /// Not read yet: the file is opened at the first read.
    #[default]
    NotYet,
    /// Open, and kept open.
    Open(R),
    /// Could not be opened (logged then): not tried again.
    Failed,
}

#[cfg(target_os = "linux")]
impl<R> Opened<R> {
    /// The reader, opened by `open` if this is the first read; `what` names the file in the
    /// warning logged if it cannot be opened.
    fn get(&mut self, open: impl FnOnce() -> io::Result<R>, what: &str) -> io::Result<&mut R> {
        if let Opened::NotYet = self {
            *self = match open() {
                Ok(reader) => Opened::Open(reader),
                Err(e) => {
                    tracing::warn!(error = %e, "regiment-tower: cannot open {what}");
                    Opened::Failed
                }
            };
        }
        match self {
            Opened::Open(reader) => Ok(reader),
            Opened::NotYet | Opened::Failed => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "could not be opened earlier",
            )),
        }
    }
}

impl Readers {
    /// Reads `measure`, and whatever else the same read gives, by [`Measure`] index.
    pub(super) fn read(&mut self, measure: Measure) -> Fresh {
        match self.read_inner(measure) {
            Ok(figures) => figures,
            Err(error) => {
                if !std::mem::replace(&mut self.warned[measure.index()], true) {
                    tracing::warn!(%measure, %error, "regiment-tower: cannot measure memory; a MemoryFootprint on this measure will not fire");
                }
                [None; 3]
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn read_inner(&mut self, measure: Measure) -> io::Result<Fresh> {
        match measure {
            Measure::Rss => {
                let statm = self
                    .statm
                    .get(regiment_core::plumbing::Statm::open, "/proc/self/statm")?;
                Ok([Some(statm.resident_bytes()?), None, None])
            }
            Measure::Pss | Measure::Uss => {
                let rollup = self
                    .smaps
                    .get(SmapsRollup::open, "/proc/self/smaps_rollup (Linux 4.14+)")?
                    .read()?;
                // RSS stays statm's alone, so that its figure has one source.
                Ok([None, Some(rollup.pss), Some(rollup.uss)])
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn read_inner(&mut self, measure: Measure) -> io::Result<Fresh> {
        match measure {
            Measure::Rss => Ok([
                Some(self.sysinfo.get_or_insert_with(SysinfoRss::new).read()?),
                None,
                None,
            ]),
            Measure::Pss | Measure::Uss => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "PSS and USS are measured on Linux only",
            )),
        }
    }
}
