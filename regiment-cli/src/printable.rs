//! Text from the master as it is safe to print on a terminal. The master is trusted to answer,
//! not the text it passes on: a worker's reason for its replacement, an error's message. A
//! control character there (an escape sequence that recolours or retitles the terminal, a
//! carriage return that overwrites the line, a newline that forges one) is shown escaped
//! instead, as `\u{1b}`, `\r`, `\n`.

use std::borrow::Cow;

/// `text` with every control character escaped.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_and_the_rest_as_is() {
        assert!(matches!(
            printable("slot 7: no such slot · ok"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            printable("bad\u{1b}[31mred\u{7}\r\nforged\u{9b}2J"),
            "bad\\u{1b}[31mred\\u{7}\\r\\nforged\\u{9b}2J"
        );
    }
}
