//! Texts from a worker, bounded: the master keeps no more of them than it can show.

/// Cuts `text` to at most `max` bytes on a char boundary, marking the cut.
pub(crate) fn cut(mut text: String, max: usize) -> String {
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

/// Cuts `text` to its last `max` bytes at most, on a char boundary, marking the cut in front: a
/// path's end says more than its beginning (`…/src/handlers.rs`).
pub(crate) fn cut_front(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}
