//! Text tables, as `status`, `reports` and `top --once` print them: each column as wide as its
//! widest cell, two spaces between columns, no trailing blanks.

use std::fmt::Write as _;

/// `rows`, one line each, their columns aligned.
pub(crate) fn aligned<'a, const N: usize>(
    rows: impl IntoIterator<Item = &'a [String; N]> + Clone,
) -> String {
    let widths: [usize; N] = std::array::from_fn(|i| {
        (rows.clone().into_iter())
            .map(|row| row[i].chars().count())
            .max()
            .unwrap_or(0)
    });
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_lines_end_without_blanks() {
        let rows = [
            ["SLOT".to_owned(), "PID".into(), "WHY".into()],
            ["0".into(), "123456".into(), String::new()],
        ];
        assert_eq!(super::aligned(&rows), "SLOT  PID     WHY\n0     123456\n");
    }
}
