//! The `--timeout` flags: a duration as humantime reads it (`500ms`, `2s`, `1h 30m`), at
//! most the longest deadline gRPC can send. Past that tonic cannot write the call's
//! `grpc-timeout` header (eight digits of hours at most) and would panic.

use std::time::Duration;

/// The longest deadline a `grpc-timeout` header carries: 99,999,999 hours.
pub(crate) const LONGEST: Duration = Duration::from_secs(99_999_999 * 3600);

/// Reads a `--timeout` value; the error names the limit.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > LONGEST {
        return Err(
            "at most 99999999h (about 11,400 years): the longest deadline gRPC's \
                    grpc-timeout header can carry"
                .to_owned(),
        );
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_deadline_grpc_carries_is_accepted_and_no_longer() {
        assert_eq!(parse("99999999h"), Ok(LONGEST));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        let error = parse("12000y").unwrap_err();
        assert!(error.starts_with("at most 99999999h"), "{error}");
        assert!(parse("100000000h").is_err());
        assert!(parse("soon").is_err());
    }
}
