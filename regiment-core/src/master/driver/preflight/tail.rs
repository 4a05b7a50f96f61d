//! The last lines a program wrote, bounded in lines and in bytes whatever it writes: what a
//! refused preflight shows of the new program.

use std::collections::VecDeque;

/// The lines kept.
pub(crate) const MAX_LINES: usize = 20;
/// The bytes kept, all lines together (one longer line is cut to its end).
pub(crate) const MAX_BYTES: usize = 4096;

/// The last complete lines of an output, and the line being written.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    partial: Vec<u8>,
}

impl Tail {
    /// Takes `chunk` in; calls `on_line` with each line it completes.
    pub(crate) fn push(&mut self, chunk: &[u8], mut on_line: impl FnMut(&str)) {
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            if let Some(line) = piece.strip_suffix(b"\n") {
                self.partial.extend_from_slice(line);
                let line = std::mem::take(&mut self.partial);
                let line = String::from_utf8_lossy(&line);
                on_line(&line);
                self.keep(&line);
            } else {
                self.partial.extend_from_slice(piece);
                // A line that never ends is kept by its end, as the last lines are.
                if self.partial.len() > MAX_BYTES {
                    self.partial.drain(..self.partial.len() - MAX_BYTES);
                }
            }
        }
    }

    fn keep(&mut self, line: &str) {
        let mut start = line.len().saturating_sub(MAX_BYTES);
        while !line.is_char_boundary(start) {
            start += 1;
        }
        let line = &line[start..];
        self.bytes += line.len();
        self.lines.push_back(line.to_owned());
        while self.lines.len() > MAX_LINES || self.bytes > MAX_BYTES {
            let gone = self.lines.pop_front().expect("over a bound: not empty");
            self.bytes -= gone.len();
        }
    }

    /// The lines kept, the unfinished one last, each ending with a newline; empty if the
    /// program wrote nothing.
    pub(crate) fn text(&self) -> String {
        let mut lines: Vec<String> = self.lines.iter().cloned().collect();
        if !self.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&self.partial).into_owned());
        }
        let skip = lines.len().saturating_sub(MAX_LINES);
        lines[skip..].iter().map(|l| format!("{l}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_are_kept_in_bounds_and_each_line_seen_once() {
        let mut tail = Tail::default();
        let mut seen = Vec::new();
        for i in 0..100 {
            tail.push(format!("line {i}\n").as_bytes(), |l| {
                seen.push(l.to_owned())
            });
        }
        tail.push(b"no end", |l| seen.push(l.to_owned()));
        assert_eq!(seen.len(), 100);
        let text = tail.text();
        assert_eq!(text.lines().count(), MAX_LINES);
        assert!(text.ends_with("line 99\nno end\n"), "{text}");
        assert!(text.starts_with("line 81\n"), "{text}");
    }

    #[test]
    fn long_lines_and_lines_split_across_chunks_stay_within_the_bytes() {
        let mut tail = Tail::default();
        let mut seen = Vec::new();
        tail.push(b"hel", |l| seen.push(l.to_owned()));
        tail.push(b"lo\nwor", |l| seen.push(l.to_owned()));
        tail.push(b"ld\n", |l| seen.push(l.to_owned()));
        assert_eq!(seen, ["hello", "world"]);
        let long = "é".repeat(5000) + "end";
        tail.push(long.as_bytes(), |_| {});
        tail.push(b"\n", |_| {});
        tail.push(&vec![b'x'; 100_000], |_| {});
        let text = tail.text();
        assert!(text.len() <= 2 * MAX_BYTES + 2, "{}", text.len());
        assert!(text.contains("éend\n"), "the end of a long line is kept");
        assert!(!text.contains("hello"), "pushed out by the bytes");
        assert_eq!(Tail::default().text(), "");
    }
}
