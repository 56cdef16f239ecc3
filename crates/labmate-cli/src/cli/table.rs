//! Plain-text tables and number formatting for the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

use labmate::text::escape_controls;

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: impl IntoIterator<Item = impl Into<String>>) -> Table {
        Table { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// One line per row: cells are escaped (a name may hold a newline or an
    /// escape sequence), and widths measured on what is shown.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let shown: Vec<Vec<Cow<str>>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| row.iter().take(cols).map(|c| escape_controls(c)).collect())
            .collect();
        let mut width = vec![0; cols];
        for row in &shown {
            for (i, cell) in row.iter().enumerate() {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &shown {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == cols {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<w$}  ", w = width[i]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(["A", "BB"]);
        t.row(vec!["xyz".into(), "1".into()]);
        assert_eq!(t.render(), "A    BB\nxyz  1\n");
    }

    #[test]
    fn a_cell_stays_on_its_row_and_columns_align_on_what_is_shown() {
        let mut t = Table::new(["NAME", "N"]);
        t.row(vec!["a\nb\x1b[2J".into(), "1".into()]);
        t.row(vec!["é".into(), "2".into()]);
        assert_eq!(t.render(), "NAME         N\na\\nb\\x1b[2J  1\né            2\n");
    }
}
