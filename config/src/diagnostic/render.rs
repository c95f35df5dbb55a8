//! Renders diagnostics the way rustc does: `--> file:line:column`, the source line, a
//! caret under the offending value, and a `help:` line.
//!
//! We use `annotate-snippets`, the renderer of rustc and cargo themselves, so a
//! `connections.toml` error printed by the build script or `ephemos check` reads like any
//! other compile error (codespan-reporting and miette render in their own styles, and
//! miette also brings a reporting framework we do not need).

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use super::{Diagnostic, Severity};

/// Renders one diagnostic as multi-line text; `color` adds ANSI styles for a terminal.
pub fn render(diagnostic: &Diagnostic, color: bool) -> String {
    let level = match diagnostic.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let mut group = Group::with_title(level.primary_title(diagnostic.message.as_str()));
    if let Some(span) = &diagnostic.span {
        let mut annotation = AnnotationKind::Primary.span(span.file.clamp(span.range.clone()));
        if let Some(label) = &diagnostic.label {
            annotation = annotation.label(label.as_str());
        }
        group = group.element(
            Snippet::source(span.file.text())
                .path(span.file.name())
                .fold(true)
                .annotation(annotation),
        );
    }
    if let Some(help) = &diagnostic.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::diagnostic::{SourceFile, SourceSpan};

    #[test]
    fn shows_path_line_column_caret_and_help() {
        let file = Arc::new(SourceFile::new(
            "connections.toml",
            "[targets.a]\nconnect_timeout = \"10 parsecs\"\n",
        ));
        let diagnostic = Diagnostic::error("invalid duration")
            .at(SourceSpan {
                file,
                range: 30..42,
            })
            .with_label("unknown unit `parsecs`")
            .with_help("write a duration such as \"500ms\" or \"1m30s\"");
        let text = render(&diagnostic, false);
        assert!(text.starts_with("error: invalid duration"), "{text}");
        assert!(text.contains("--> connections.toml:2:19"), "{text}");
        assert!(text.contains("connect_timeout = \"10 parsecs\""), "{text}");
        assert!(
            text.contains("^^^^^^^^^^^^ unknown unit `parsecs`"),
            "{text}"
        );
        assert!(text.contains("help: write a duration"), "{text}");
    }
}
