//! The keys of the live view, and the questions they ask before anything is done: `r` a
//! rolling restart, `+`/`-` one worker more or fewer, `x` a slot to replace (which one, then
//! whether), `q` quits. Each acting key is confirmed with `y`; any other key cancels.

use ratatui::crossterm::event::KeyCode;

/// What the operator asked for, once confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// `regiment reload`.
    Reload,
    /// `regiment scale TO`.
    Scale {
        /// Workers now.
        from: usize,
        /// Workers wanted.
        to: usize,
    },
    /// `regiment replace SLOT`.
    Replace {
        /// The slot.
        slot: usize,
    },
}

impl Act {
    /// What it does, for a person: `scale from 2 to 3 workers`.
    pub(crate) fn what(&self) -> String {
        match self {
            Act::Reload => "rolling restart (reload) of every worker".into(),
            Act::Scale { from, to } => format!("scale from {from} to {to} workers"),
            Act::Replace { slot } => format!("replace the worker of slot {slot}"),
        }
    }
}

/// What a key leads to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to do beyond drawing again.
    Nothing,
    /// Leave the view.
    Quit,
    /// Do this, confirmed.
    Do(Act),
}

/// The question on screen, if any.
#[derive(Default, Debug)]
pub(crate) enum Prompt {
    /// None: the keys act.
    #[default]
    Idle,
    /// Waits for `y`.
    Confirm(Act),
    /// Waits for a slot number and Enter.
    Slot(String),
}

impl Prompt {
    /// Takes `key`, with `slots` slots now (for `+`, `-` and `x`).
    pub(crate) fn press(&mut self, key: KeyCode, slots: usize) -> Step {
        match std::mem::take(self) {
            Prompt::Idle => {
                *self = match key {
                    KeyCode::Char('q') => return Step::Quit,
                    KeyCode::Char('r') => Prompt::Confirm(Act::Reload),
                    KeyCode::Char('+') => Prompt::Confirm(Act::Scale {
                        from: slots,
                        to: slots + 1,
                    }),
                    // The master refuses 0, and says so.
                    KeyCode::Char('-') => Prompt::Confirm(Act::Scale {
                        from: slots,
                        to: slots.saturating_sub(1),
                    }),
                    KeyCode::Char('x') => Prompt::Slot(String::new()),
                    _ => Prompt::Idle,
                };
                Step::Nothing
            }
            Prompt::Confirm(act) => match key {
                KeyCode::Char('y') | KeyCode::Char('Y') => Step::Do(act),
                _ => Step::Nothing,
            },
            Prompt::Slot(mut typed) => {
                match key {
                    KeyCode::Char(c) if c.is_ascii_digit() && typed.len() < 4 => {
                        typed.push(c);
                        *self = Prompt::Slot(typed);
                    }
                    KeyCode::Backspace => {
                        typed.pop();
                        *self = Prompt::Slot(typed);
                    }
                    KeyCode::Enter => {
                        *self = match typed.parse() {
                            Ok(slot) => Prompt::Confirm(Act::Replace { slot }),
                            Err(_) => Prompt::Slot(typed),
                        };
                    }
                    KeyCode::Esc => {}
                    // Anything else is not a slot: the question stays.
                    _ => *self = Prompt::Slot(typed),
                }
                Step::Nothing
            }
        }
    }

    /// The line the footer shows: the question, else the keys.
    pub(crate) fn line(&self, slots: usize) -> String {
        match self {
            Prompt::Idle => {
                "r reload · + scale up · - scale down · x replace a slot · q quit".into()
            }
            Prompt::Confirm(act) => format!("{}? y/n", act.what()),
            Prompt::Slot(typed) => format!(
                "replace the worker of which slot (0 to {}, Enter; Esc cancels)? {typed}",
                slots.saturating_sub(1)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(prompt: &mut Prompt, keys: &[KeyCode]) -> Vec<Step> {
        keys.iter().map(|k| prompt.press(*k, 3)).collect()
    }

    #[test]
    fn every_acting_key_asks_first_and_only_y_acts() {
        let mut p = Prompt::default();
        assert_eq!(
            keys(&mut p, &[KeyCode::Char('r'), KeyCode::Char('y')]),
            [Step::Nothing, Step::Do(Act::Reload)]
        );
        assert_eq!(keys(&mut p, &[KeyCode::Char('+')]), [Step::Nothing]);
        assert_eq!(p.line(3), "scale from 3 to 4 workers? y/n");
        assert_eq!(keys(&mut p, &[KeyCode::Char('n')]), [Step::Nothing]);
        assert!(matches!(p, Prompt::Idle), "n cancels");
        assert_eq!(
            keys(&mut p, &[KeyCode::Char('-'), KeyCode::Char('q')]),
            [Step::Nothing, Step::Nothing],
            "q answers the question (no), it does not quit"
        );
        assert_eq!(
            keys(&mut p, &[KeyCode::Char('-'), KeyCode::Char('y')]),
            [Step::Nothing, Step::Do(Act::Scale { from: 3, to: 2 })]
        );
        assert_eq!(keys(&mut p, &[KeyCode::Char('q')]), [Step::Quit]);
    }

    #[test]
    fn x_asks_which_slot_then_whether() {
        let mut p = Prompt::default();
        keys(
            &mut p,
            &[
                KeyCode::Char('x'),
                KeyCode::Char('1'),
                KeyCode::Char('a'),
                KeyCode::Char('2'),
            ],
        );
        assert_eq!(
            p.line(3),
            "replace the worker of which slot (0 to 2, Enter; Esc cancels)? 12"
        );
        keys(&mut p, &[KeyCode::Backspace, KeyCode::Enter]);
        assert_eq!(p.line(3), "replace the worker of slot 1? y/n");
        assert_eq!(
            keys(&mut p, &[KeyCode::Char('y')]),
            [Step::Do(Act::Replace { slot: 1 })]
        );
        keys(&mut p, &[KeyCode::Char('x'), KeyCode::Enter]);
        assert!(matches!(p, Prompt::Slot(_)), "Enter on nothing asks on");
        keys(&mut p, &[KeyCode::Esc]);
        assert!(matches!(p, Prompt::Idle), "Esc cancels");
    }
}
