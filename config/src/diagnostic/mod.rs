//! Errors and warnings about a configuration, with the place they point at.
//!
//! Every problem found in `connections.toml` (or, later, in an attribute) becomes a
//! [`Diagnostic`]. Readers never stop at the first problem: they push into a
//! [`Diagnostics`] list and carry on, so a user sees every error of a file at once.

mod render;
mod source;
mod suggest;

pub use render::render;
pub use source::{LineColumn, SourceFile};
pub use suggest::did_you_mean;
pub(crate) use suggest::unknown_name_help;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The configuration is invalid: the build (or `ephemos check`) fails.
    Error,
    /// The configuration is valid but probably not what the user wants.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A byte range inside a named source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpan {
    /// The file the range points into.
    pub file: Arc<SourceFile>,
    /// Byte offsets into [`SourceFile::text`].
    pub range: Range<usize>,
}

impl SourceSpan {
    /// The 1-based line and column where the span starts.
    pub fn start(&self) -> LineColumn {
        self.file.line_column(self.range.start)
    }
}

impl fmt::Display for SourceSpan {
    /// `path:line:column`, the form editors and terminals turn into links.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.start();
        write!(f, "{}:{}:{}", self.file.name(), at.line, at.column)
    }
}

/// One problem with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One sentence saying what is wrong.
    pub message: String,
    /// Where it is, when it comes from a file.
    pub span: Option<SourceSpan>,
    /// A short label printed under the caret.
    pub label: Option<String>,
    /// How to fix it ("did you mean ...", the allowed range, ...).
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with a message and no location yet.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    /// A warning with a message and no location yet.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    fn new(severity: Severity, message: impl Into<String>) -> Self {
        Self {
            severity,
            message: message.into(),
            span: None,
            label: None,
            help: None,
        }
    }

    /// Points the diagnostic at a place in a file.
    pub fn at(mut self, span: SourceSpan) -> Self {
        self.span = Some(span);
        self
    }

    /// Adds a label shown under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a hint only when there is one.
    pub fn with_optional_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// One line: `error: path:line:column: message (help: ...)`; see [`render`] for the
    /// multi-line form with the source snippet.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if let Some(span) = &self.span {
            write!(f, "{span}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(label) = &self.label {
            write!(f, ": {label}")?;
        }
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

/// Every diagnostic found so far, errors and warnings, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Adds a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Whether any error (not counting warnings) was found.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The errors, in order.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    /// The warnings, in order.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    /// All diagnostics, errors and warnings, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// How many diagnostics there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sorts errors before warnings, each by position in the file.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| {
            (
                !d.is_error(),
                d.span
                    .as_ref()
                    .map(|s| (s.file.name().to_owned(), s.range.start)),
            )
        });
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<T: IntoIterator<Item = Diagnostic>>(&mut self, iter: T) {
        self.items.extend(iter);
    }
}
