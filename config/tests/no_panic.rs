//! Property tests: no input panics the reader, and every diagnostic points inside the
//! input it was given.

use ephemos_config::check_str;
use proptest::prelude::*;

const REFERENCE: &str = include_str!("../reference.toml");

fn assert_well_placed(text: &str) {
    let checked = check_str("fuzz.toml", text);
    for d in checked.diagnostics.iter() {
        if let Some(span) = &d.span {
            assert!(span.range.start <= span.range.end, "{d:?}");
            assert!(span.range.end <= text.len(), "span past the end: {d:?}");
            assert!(text.is_char_boundary(span.range.start), "{d:?}");
            let at = span.start();
            assert!(
                at.line >= 1 && at.line <= text.lines().count().max(1) + 1,
                "{d:?}"
            );
        }
        // Rendering must not panic either, whatever the span.
        let _ = ephemos_config::diagnostic::render(d, false);
    }
}

/// Pieces that make mutations likely to hit interesting paths.
const FRAGMENTS: &[&str] = &[
    "\"",
    "'",
    "'''",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    "\n",
    ".",
    "#",
    "0",
    "-1",
    "1e999",
    "true",
    "\"off\"",
    "\"5s\"",
    "[targets.x]",
    "retry = false",
    "\u{e9}",
    "\\u00e9",
    "inf",
    "nan",
    "max_attempts = 99",
    "service_config = '{'",
    "pool = { size = 0 }",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        assert_well_placed(&text);
    }

    #[test]
    fn arbitrary_toml_shaped_text_never_panics(
        lines in prop::collection::vec(
            ("[a-z_.]{1,20}", prop::sample::select(FRAGMENTS)).prop_map(|(k, v)| format!("{k} = {v}")),
            0..20,
        )
    ) {
        assert_well_placed(&lines.join("\n"));
    }

    #[test]
    fn mutated_reference_never_panics(
        edits in prop::collection::vec((0usize..REFERENCE.len(), 0usize..8, prop::sample::select(FRAGMENTS)), 1..6)
    ) {
        let mut text = REFERENCE.to_owned();
        for (at, remove, insert) in edits {
            let mut start = at.min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + remove).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(start..end, insert);
        }
        assert_well_placed(&text);
    }
}
