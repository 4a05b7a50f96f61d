//! The programs workers run: one per generation that may still spawn, each kept open from the
//! moment its rollout started. The good generation's program stays open until a later rollout
//! completes, so that no deploy at the path changes what the kept generation runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::program::Program;
use crate::master::policy::Generation;

/// Programs by generation: the good one, and the one being rolled out.
pub(crate) struct Programs {
    /// The path as configured: opened anew for every rollout.
    path: PathBuf,
    by_generation: BTreeMap<Generation, Program>,
}

impl Programs {
    /// The first generation's program, opened at start.
    pub(crate) fn new(path: PathBuf, first: Program) -> Self {
        warn_fallback(&first);
        Self {
            path,
            by_generation: BTreeMap::from([(Generation::FIRST, first)]),
        }
    }

    /// A rollout to `generation` starts: what the path holds now is its program. If the path
    /// cannot be opened, the spawns of the generation fail (and abort the rollout), each
    /// trying again.
    pub(crate) fn rollout_started(&mut self, generation: Generation) {
        if let Err(e) = self.open(generation) {
            tracing::error!(
                program = %self.path.display(),
                generation = generation.0,
                error = %e,
                "cannot open the worker program for the rollout"
            );
        }
    }

    /// A rollout completed: its program is the good one; older ones are closed.
    pub(crate) fn rollout_done(&mut self, generation: Generation) {
        self.by_generation.retain(|g, _| *g >= generation);
    }

    /// A rollout was aborted or superseded: its generation spawns no more.
    pub(crate) fn rollout_ended(&mut self, generation: Generation) {
        if self.by_generation.len() > 1 {
            self.by_generation.remove(&generation);
        }
    }

    /// The program of `generation`, opened now if its rollout could not open it.
    pub(crate) fn get(&mut self, generation: Generation) -> std::io::Result<&Program> {
        if !self.by_generation.contains_key(&generation) {
            self.open(generation)?;
        }
        Ok(&self.by_generation[&generation])
    }

    fn open(&mut self, generation: Generation) -> std::io::Result<()> {
        let program = Program::open(&self.path)?;
        warn_fallback(&program);
        self.by_generation.insert(generation, program);
        Ok(())
    }
}

fn warn_fallback(program: &Program) {
    if let Some(why) = program.fallback() {
        tracing::warn!(program = %program.path().display(), "{why}");
    }
}
