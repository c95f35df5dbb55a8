//! How the commands print durations: milliseconds with one decimal, as text and as a
//! JSON number.

use std::time::Duration;

/// `12.3 ms`.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Milliseconds rounded to a tenth, for JSON.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
