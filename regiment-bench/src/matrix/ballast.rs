//! A process holding a given amount of touched heap, for the sampling costs that grow with a
//! process's resident memory: `regiment-bench --hold-memory-mib N`, started by [`Ballast`] and
//! gone when its stdin closes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// What the holding process prints once its memory is touched.
const HOLDING: &str = "holding";

/// The body of `regiment-bench --hold-memory-mib N`: allocates and touches `mib` MiB, says so on
/// stdout, and holds them until stdin closes.
pub fn hold(mib: usize) {
    // vec! of a non-zero byte writes every page: resident, private, anonymous.
    let held = std::hint::black_box(vec![1u8; mib << 20]);
    println!("{HOLDING}");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(std::hint::black_box(held));
}

/// A child `regiment-bench --hold-memory-mib N`; killed and waited for when dropped.
#[derive(Debug)]
pub struct Ballast {
    child: Child,
}

impl Ballast {
    /// Starts `program` (this `regiment-bench`) holding `mib` MiB, and waits until it does.
    pub fn start(program: &Path, mib: usize) -> Result<Self, String> {
        let mut child = Command::new(program)
            .arg("--hold-memory-mib")
            .arg(mib.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let ballast = Ballast { child };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("the process holding {mib} MiB: {e}"))?;
        if line.trim() != HOLDING {
            return Err(format!("the process holding {mib} MiB said {line:?}"));
        }
        Ok(ballast)
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
