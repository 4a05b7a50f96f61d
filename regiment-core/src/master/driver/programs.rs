//! The programs workers run: one per generation that may still spawn, each opened and released
//! as the policy says (`Effect::OpenProgram` as its rollout starts, `Effect::ReleaseProgram`
//! once none of its workers spawns any more). The good generation's program stays open until a
//! later rollout completes, so that no deploy at the path changes what the kept generation
//! runs.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use super::handover::envelope::ProgramEntry;
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

    /// The programs an earlier master held, handed over (see `handover::adopt`).
    pub(crate) fn adopted(path: PathBuf, programs: Vec<(ProgramEntry, Option<OwnedFd>)>) -> Self {
        let by_generation = programs
            .into_iter()
            .map(|(entry, fd)| (Generation(entry.generation), Program::adopted(&entry, fd)))
            .collect();
        Self {
            path,
            by_generation,
        }
    }

    /// Every program held, for a handover.
    pub(crate) fn entries(&self) -> Vec<ProgramEntry> {
        self.by_generation
            .iter()
            .map(|(generation, program)| program.entry(generation.0))
            .collect()
    }

    /// What the path holds now is the program of `generation` (its rollout starts). If the
    /// path cannot be opened, the spawns of the generation fail (and abort the rollout), each
    /// trying again.
    pub(crate) fn open(&mut self, generation: Generation) {
        if let Err(e) = self.open_now(generation) {
            tracing::error!(
                program = %self.path.display(),
                generation = generation.0,
                error = %e,
                "cannot open the worker program for the rollout"
            );
        }
    }

    /// No worker of `generation` spawns any more: its program is closed (never the last one).
    pub(crate) fn release(&mut self, generation: Generation) {
        if self.by_generation.len() > 1 {
            self.by_generation.remove(&generation);
        }
    }

    /// The program of `generation`, opened now if its rollout could not open it.
    pub(crate) fn get(&mut self, generation: Generation) -> std::io::Result<&Program> {
        if !self.by_generation.contains_key(&generation) {
            self.open_now(generation)?;
        }
        Ok(&self.by_generation[&generation])
    }

    fn open_now(&mut self, generation: Generation) -> std::io::Result<()> {
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
