//! Reads systemd unit files (and drop-ins) as systemd does, for what the guides' tests need:
//! `[Section]` headers, `Key=value` assignments with `\` continuations and `#`/`;` comments,
//! the last assignment winning for single settings, `Environment=` split into its
//! assignments, and timespans (`40s`, `1min 30s`, a bare number of seconds).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The assignments of one unit file, in order, with its drop-ins after it.
#[derive(Debug, Clone)]
pub struct UnitFile {
    path: PathBuf,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    section: String,
    key: String,
    value: String,
}

impl UnitFile {
    /// Reads and parses the unit file at `path`, or panics naming it.
    pub fn read(path: &Path) -> UnitFile {
        let mut unit = UnitFile {
            path: path.to_owned(),
            entries: Vec::new(),
        };
        unit.add(path);
        unit
    }

    /// The unit with the drop-in at `path` applied over it, as systemd applies
    /// `NAME.service.d/*.conf`: its assignments come after the unit's.
    pub fn with_drop_in(mut self, path: &Path) -> UnitFile {
        self.add(path);
        self
    }

    fn add(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut section = String::new();
        for line in logical_lines(&text, &['#', ';']) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not an assignment: {line:?}", path.display()));
            self.entries.push(Entry {
                section: section.clone(),
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        }
    }

    /// The value of `key` in `[section]`: its last assignment.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.all(section, key).last().copied()
    }

    /// The value of `key` in `[section]`, or a panic naming the file and the setting.
    pub fn require(&self, section: &str, key: &str) -> &str {
        self.get(section, key)
            .unwrap_or_else(|| panic!("{} has no {key}= in [{section}]", self.path.display()))
    }

    /// Every assignment of `key` in `[section]`, in order.
    pub fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.section == section && e.key == key)
            .map(|e| e.value.as_str())
            .collect()
    }

    /// A timespan setting (`TimeoutStopSec=`), parsed as systemd parses it.
    pub fn timespan(&self, section: &str, key: &str) -> Option<Duration> {
        self.get(section, key).map(|v| {
            timespan(v)
                .unwrap_or_else(|| panic!("{}: {key}={v} is not a timespan", self.path.display()))
        })
    }

    /// The `[Service]` section's `Environment=` assignments, in order, as (name, value).
    pub fn environment(&self) -> Vec<(String, String)> {
        self.all("Service", "Environment")
            .into_iter()
            .flat_map(words)
            .map(|word| match word.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => panic!("{}: Environment={word} has no '='", self.path.display()),
            })
            .collect()
    }

    /// The value `Environment=` gives `name`, if any (the last assignment wins).
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.environment()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Where the unit was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A systemd timespan: a bare number is seconds; otherwise units as in `1min 30s`, `500ms`.
pub fn timespan(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(value).ok()
}

/// Splits a command line or an `Environment=` value into words: whitespace separates them, and
/// double or single quotes group (and are removed), as systemd reads them.
pub fn words(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The lines of a configuration text as unit files and Dockerfiles both read them: trimmed,
/// lines ending in `\` joined to the next with a space, comment lines (starting with one of
/// `comments`) and blank lines dropped.
pub fn logical_lines(text: &str, comments: &[char]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with(comments) || (pending.is_empty() && line.is_empty()) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        lines.push(std::mem::take(&mut pending));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_read_as_systemd_reads_them() {
        assert_eq!(timespan("40"), Some(Duration::from_secs(40)));
        assert_eq!(timespan("40s"), Some(Duration::from_secs(40)));
        assert_eq!(timespan("1min 30s"), Some(Duration::from_secs(90)));
        assert_eq!(timespan("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(timespan("soon"), None);
    }

    #[test]
    fn words_split_on_whitespace_and_quotes_group() {
        assert_eq!(
            words(r#"A=1 "B=two words" C='x y'"#),
            ["A=1", "B=two words", "C=x y"]
        );
        assert_eq!(words("/bin/kill -s HUP $MAINPID").len(), 4);
    }
}
