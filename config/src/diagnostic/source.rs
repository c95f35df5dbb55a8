//! A configuration file's name and text, and the mapping from byte offsets to lines.

use std::fmt;

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineColumn {
    /// Line number, from 1.
    pub line: usize,
    /// Column number in characters, from 1.
    pub column: usize,
}

impl fmt::Display for LineColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// The text of a configuration file and the name to show for it in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps a file's text; `name` is what messages print (usually the path as given).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The name shown in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line and column of a byte offset (clamped to the text).
    pub fn line_column(&self, offset: usize) -> LineColumn {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let mut line_start = self.line_starts[line_index];
        // A byte-order mark is invisible in editors: columns on the first line skip it.
        if line_index == 0 && self.text.starts_with('\u{feff}') && offset >= 3 {
            line_start = 3;
        }
        LineColumn {
            line: line_index + 1,
            column: self.text[line_start..offset].chars().count() + 1,
        }
    }

    /// `range` inside the text and on character boundaries (widened, never narrowed
    /// to nothing), so any range can be sliced and rendered.
    pub fn clamp(&self, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let start = self.floor_char_boundary(range.start.min(self.text.len()));
        let mut end = range.end.clamp(start, self.text.len());
        while !self.text.is_char_boundary(end) {
            end += 1;
        }
        start..end
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines_and_character_columns() {
        let file = SourceFile::new("c.toml", "a = 1\nbé = 2\n");
        assert_eq!(file.line_column(0), LineColumn { line: 1, column: 1 });
        assert_eq!(file.line_column(4), LineColumn { line: 1, column: 5 });
        assert_eq!(file.line_column(6), LineColumn { line: 2, column: 1 });
        // `é` is two bytes: the column after it counts characters.
        assert_eq!(file.line_column(9), LineColumn { line: 2, column: 3 });
        // Past the end, and inside a multi-byte character, clamp instead of panicking.
        assert_eq!(file.line_column(999).line, 3);
        assert_eq!(file.line_column(8), LineColumn { line: 2, column: 2 });
        assert_eq!(file.clamp(7..8), 7..9, "widened to the whole `é`");
        assert_eq!(file.clamp(8..999), 7..14);
        let bom = SourceFile::new("c.toml", "\u{feff}a = 1\n");
        assert_eq!(bom.line_column(3), LineColumn { line: 1, column: 1 });
        assert_eq!(bom.line_column(7), LineColumn { line: 1, column: 5 });
    }
}
