//! Texts from a worker, bounded: the master keeps no more of them than it can show.

/// Cuts `text` to at most `max` bytes on a char boundary, marking the cut.
pub(super) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
