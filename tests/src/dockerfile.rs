//! Reads a Dockerfile as `docker build` does, for what the guides' tests check: instructions
//! with `\` continuations and `#` comments, grouped in stages by `FROM`; the exec form
//! (`["prog", "arg"]`) told from the shell form; `ENV K=V ...`.

use std::path::Path;

use crate::unit_file::{logical_lines, words};

/// One stage of a Dockerfile: its `FROM` and the instructions up to the next one.
#[derive(Debug, Clone)]
pub struct Stage {
    /// `FROM`'s arguments (`rust:1-bookworm AS build`).
    pub from: String,
    instructions: Vec<(String, String)>,
}

/// Reads the Dockerfile at `path` into its stages, or panics naming it.
pub fn stages(path: &Path) -> Vec<Stage> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in logical_lines(&text, &['#']) {
        let (keyword, args) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((instruction.as_str(), ""));
        let (keyword, args) = (keyword.to_ascii_uppercase(), args.trim().to_owned());
        if keyword == "FROM" {
            stages.push(Stage {
                from: args,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("{}: {keyword} before FROM", path.display()))
                .instructions
                .push((keyword, args));
        }
    }
    stages
}

impl Stage {
    /// The arguments of every `keyword` instruction of the stage, in order.
    pub fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, a)| a.as_str())
            .collect()
    }

    /// The arguments of the last `keyword` instruction (the one that counts for `CMD`,
    /// `ENTRYPOINT`, `STOPSIGNAL`).
    pub fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last().copied()
    }

    /// The last `keyword` (`ENTRYPOINT`, `CMD`) in exec form, as its argv; `None` if the stage
    /// has none; a panic if it is in shell form, which Docker runs as `/bin/sh -c "..."`.
    pub fn exec_form(&self, keyword: &str) -> Option<Vec<String>> {
        let args = self.last(keyword)?;
        match serde_json::from_str::<Vec<String>>(args) {
            Ok(argv) if !argv.is_empty() => Some(argv),
            _ => panic!(
                "{keyword} {args} is in shell form: Docker runs it as /bin/sh -c, and the shell, \
                 not the master, may be PID 1 and keep the stop signal"
            ),
        }
    }

    /// Every `ENV` assignment of the stage, in order, as (name, value).
    pub fn env(&self) -> Vec<(String, String)> {
        self.all("ENV")
            .into_iter()
            .flat_map(words)
            .map(|w| match w.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => panic!("ENV {w}: write ENV NAME=VALUE"),
            })
            .collect()
    }

    /// The value the stage's `ENV` gives `name`, if any.
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}
