//! Durations as the gRPC service config writes them: proto3 JSON (`"1.5s"`).

use std::time::Duration;

use super::InvalidValue;

const HELP: &str =
    "write seconds with an `s` suffix and at most 9 fractional digits, e.g. \"1.5s\"";

/// Parses a proto3 JSON duration: decimal seconds, at most 9 fractional digits, ending in
/// `s`, not negative (the service config has no use for negative durations).
pub fn parse_proto_duration(text: &str) -> Result<Duration, InvalidValue> {
    let invalid = |problem: &str| InvalidValue::new(problem, HELP);
    let body = text
        .strip_suffix('s')
        .ok_or_else(|| invalid("a duration must end in `s`"))?;
    if body.starts_with('-') {
        return Err(invalid("a duration here cannot be negative"));
    }
    let (seconds, fraction) = body.split_once('.').unwrap_or((body, ""));
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("expected whole seconds before the `s`"));
    }
    if body.contains('.') && fraction.is_empty() {
        return Err(invalid("expected digits after the decimal point"));
    }
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("at most 9 fractional digits are allowed"));
    }
    let seconds: u64 = seconds.parse().map_err(|_| invalid("too many seconds"))?;
    if seconds > super::MAX_DURATION.as_secs() {
        return Err(invalid(&format!(
            "too long: grpc-go accepts at most {}s",
            super::MAX_DURATION.as_secs()
        )));
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse::<u32>().unwrap_or(0)
    };
    Ok(Duration::new(seconds, nanos))
}

/// Formats a duration as canonical proto3 JSON: 0, 3, 6 or 9 fractional digits.
pub fn format_proto_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        format!("{seconds}s")
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{seconds}.{:03}s", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{seconds}.{:06}s", nanos / 1_000)
    } else {
        format!("{seconds}.{nanos:09}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proto3_json_durations() {
        assert_eq!(parse_proto_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(
            parse_proto_duration("1.5s"),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_proto_duration("0.000000001s"),
            Ok(Duration::from_nanos(1))
        );
        assert_eq!(parse_proto_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_grpc_go_rejects() {
        for bad in [
            "1",
            "1.0000000001s",
            "-1s",
            "1.s",
            ".5s",
            "1ms",
            "1e3s",
            "",
            "s",
            "1 s",
        ] {
            assert!(
                parse_proto_duration(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn formats_canonically_and_round_trips() {
        assert_eq!(format_proto_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_proto_duration(Duration::from_millis(500)), "0.500s");
        assert_eq!(
            format_proto_duration(Duration::from_micros(1_000_001)),
            "1.000001s"
        );
        assert_eq!(
            format_proto_duration(Duration::from_nanos(7)),
            "0.000000007s"
        );
        for nanos in [0, 1, 1_500_000_000, 123_456_789_012] {
            let d = Duration::from_nanos(nanos);
            assert_eq!(parse_proto_duration(&format_proto_duration(d)), Ok(d));
        }
    }
}
