//! Names the frames of a recorded stack: function, file and line, from the binary's own debug
//! info, on the capturing thread (never in the signal handler), until a deadline.

use std::time::Instant;

use super::signal::RawStack;
use super::{MAX_FILE, MAX_FRAMES, MAX_FUNCTION};
use crate::events::StackFrame;
pub(super) use crate::protocol::bounded::{cut as head, cut_front as tail};

/// The frames of the code `stack`'s thread was running, innermost first, at most
/// [`MAX_FRAMES`]: a function inlined into another is a frame of its own, as in a panic's
/// backtrace. Past `deadline` the frames left are listed by their address alone.
pub(super) fn frames(stack: &RawStack, deadline: Instant) -> Vec<StackFrame> {
    let mut frames = Vec::new();
    // An address 0 is the unwinder's mark of the stack's end, below the thread's start.
    for &address in stack.own().iter().filter(|&&a| a != 0) {
        if frames.len() >= MAX_FRAMES {
            break;
        }
        let before = frames.len();
        if Instant::now() < deadline {
            backtrace::resolve(address as *mut std::ffi::c_void, |symbol| {
                if frames.len() < MAX_FRAMES {
                    frames.push(StackFrame {
                        function: symbol.name().map_or_else(
                            || address_of(address),
                            |name| head(format!("{name:#}"), MAX_FUNCTION),
                        ),
                        file: symbol
                            .filename()
                            .map(|file| tail(file.to_string_lossy().into_owned(), MAX_FILE)),
                        line: symbol.lineno(),
                    });
                }
            });
        }
        if frames.len() == before {
            frames.push(StackFrame {
                function: address_of(address),
                file: None,
                line: None,
            });
        }
    }
    frames
}

/// How a frame that could not be named is listed.
fn address_of(address: usize) -> String {
    format!("{address:#x}")
}
