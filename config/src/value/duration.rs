//! Durations as written in `connections.toml` and attributes: humantime syntax.

use std::time::Duration;

use super::InvalidValue;

const HELP: &str = "write a duration such as \"500ms\", \"10s\" or \"1m30s\"";

/// Parses a humantime duration ("500ms", "1m30s", "2h").
pub fn parse_duration(text: &str) -> Result<Duration, InvalidValue> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| InvalidValue::new(format!("invalid duration: {e}"), HELP))?;
    crate::rules::duration_fits_grpc(duration)?;
    Ok(duration)
}

/// Parses a duration that can be turned off: `"off"` gives `None`.
pub fn parse_optional_duration(text: &str) -> Result<Option<Duration>, InvalidValue> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_duration(text)
        .map(Some)
        .map_err(|e| InvalidValue::new(e.problem, format!("{HELP}, or \"off\"")))
}

/// Formats a duration the way it would be written in `connections.toml` ("1m 30s").
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    humantime::format_duration(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_humantime_and_off() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_optional_duration("off"), Ok(None));
        assert_eq!(
            parse_optional_duration("5m"),
            Ok(Some(Duration::from_secs(300)))
        );
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        let err = parse_duration("10 parsecs").unwrap_err();
        assert!(err.problem.contains("invalid duration"), "{err}");
        assert!(err.help.contains("500ms"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("off").is_err());
        assert!(
            parse_optional_duration("of")
                .unwrap_err()
                .help
                .contains("\"off\"")
        );
    }

    #[test]
    fn formats_round_trip() {
        for d in [0, 1, 500, 90_000, 7_200_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
