//! PSS and USS (and RSS) from `/proc/self/smaps_rollup`, read in one `pread`.

#[cfg(target_os = "linux")]
use std::io;

/// One reading of `/proc/self/smaps_rollup`, in bytes.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let r: regiment_tower::sampler::Rollup = regiment_tower::sampler::SmapsRollup::open()?.read()?;
/// assert!(r.uss <= r.pss && r.pss <= r.rss);
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollup {
    /// Resident set size (`Rss`).
    pub rss: u64,
    /// Proportional set size (`Pss`).
    pub pss: u64,
    /// Unique set size: `Private_Clean + Private_Dirty`.
    pub uss: u64,
}

/// A kept-open `/proc/self/smaps_rollup` (Linux 4.14+), re-read with `pread` at offset 0.
///
/// The kernel builds the figures on each read by walking every mapping's page tables, so a
/// read costs more than `statm` (see `BENCHMARKS.md`); keeping the file open saves the path
/// walk and the `open`/`close`.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let mut smaps = regiment_tower::sampler::SmapsRollup::open()?;
/// let r = smaps.read()?;
/// assert!(r.rss > 0 && r.pss <= r.rss && r.uss <= r.pss);
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct SmapsRollup {
    file: std::fs::File,
    // About 1 KiB of text on current kernels; room for new fields.
    buf: Box<[u8; 4096]>,
}

#[cfg(target_os = "linux")]
impl SmapsRollup {
    /// Opens `/proc/self/smaps_rollup`.
    ///
    /// ```
    /// let _smaps = regiment_tower::sampler::SmapsRollup::open()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            file: std::fs::File::open("/proc/self/smaps_rollup")?,
            buf: Box::new([0; 4096]),
        })
    }

    /// Reads the figures now (one `pread` at offset 0).
    ///
    /// ```
    /// let mut smaps = regiment_tower::sampler::SmapsRollup::open()?;
    /// assert!(smaps.read()?.pss > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&mut self) -> io::Result<Rollup> {
        use std::os::unix::fs::FileExt;
        let mut len = 0;
        // One pread returns the whole text in practice; loop in case a kernel splits it.
        while len < self.buf.len() {
            let n = self.file.read_at(&mut self.buf[len..], len as u64)?;
            if n == 0 {
                break;
            }
            len += n;
            if parse_rollup(&self.buf[..len]).is_some() && self.buf[len - 1] == b'\n' {
                break;
            }
        }
        parse_rollup(&self.buf[..len]).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "unexpected smaps_rollup format")
        })
    }
}

/// Parses the `Rss`, `Pss`, `Private_Clean` and `Private_Dirty` lines (values in kB).
#[cfg(any(target_os = "linux", test))]
pub(super) fn parse_rollup(text: &[u8]) -> Option<Rollup> {
    let (mut rss, mut pss, mut clean, mut dirty) = (None, None, None, None);
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let field = match &line[..colon] {
            b"Rss" => &mut rss,
            b"Pss" => &mut pss,
            b"Private_Clean" => &mut clean,
            b"Private_Dirty" => &mut dirty,
            _ => continue,
        };
        let kb = std::str::from_utf8(&line[colon + 1..])
            .ok()?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        *field = Some(kb * 1024);
    }
    Some(Rollup {
        rss: rss?,
        pss: pss?,
        uss: clean? + dirty?,
    })
}
