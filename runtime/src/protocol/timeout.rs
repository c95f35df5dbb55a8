//! The `grpc-timeout` header (PROTOCOL-HTTP2.md): at most 8 digits and a unit (`H`, `M`,
//! `S`, `m`, `u`, `n`). Written in the finest unit that fits, rounded up, as grpc-go's
//! `encodeTimeout` does, so a call with little time left still tells the server how much.

use std::time::Duration;

use http::HeaderValue;

/// The largest value of the 8 digits.
const MAX_VALUE: u128 = 99_999_999;

/// Parses a `grpc-timeout` value.
pub(crate) fn parse(value: &[u8]) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit[0] {
        b'H' => Duration::from_secs(amount.checked_mul(3600)?),
        b'M' => Duration::from_secs(amount.checked_mul(60)?),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The header value for `left`: the finest unit whose count fits 8 digits, rounded up
/// (`0n` when nothing is left).
pub(crate) fn encode(left: Duration) -> HeaderValue {
    let nanos = left.as_nanos();
    let units: [(u128, u8); 6] = [
        (1, b'n'),
        (1_000, b'u'),
        (1_000_000, b'm'),
        (1_000_000_000, b'S'),
        (60_000_000_000, b'M'),
        (3_600_000_000_000, b'H'),
    ];
    let (count, unit) = units
        .iter()
        .map(|&(size, unit)| (nanos.div_ceil(size), unit))
        .find(|&(count, _)| count <= MAX_VALUE)
        .unwrap_or((MAX_VALUE, b'H'));
    let mut text = [0u8; 9];
    let mut at = text.len() - 1;
    text[at] = unit;
    let mut rest = count;
    loop {
        at -= 1;
        text[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // Digits and a unit letter are always a valid header value.
    HeaderValue::from_bytes(&text[at..]).unwrap_or_else(|_| HeaderValue::from_static("0n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Duration) -> String {
        encode(d).to_str().unwrap().to_owned()
    }

    #[test]
    fn encodes_in_the_finest_unit_that_fits_rounding_up() {
        // Expected values from grpc-go's encodeTimeout (internal/grpcutil/encode_duration.go).
        assert_eq!(text(Duration::ZERO), "0n");
        assert_eq!(text(Duration::from_nanos(1)), "1n");
        assert_eq!(text(Duration::from_micros(500)), "500000n");
        assert_eq!(text(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(text(Duration::from_nanos(100_000_000)), "100000u");
        assert_eq!(text(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(text(Duration::from_secs(5)), "5000000u");
        assert_eq!(text(Duration::from_secs(100)), "100000m");
        assert_eq!(text(Duration::from_secs(100_000)), "100000S");
        assert_eq!(text(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(text(Duration::from_secs(6_000_000_000)), "1666667H");
        assert_eq!(text(Duration::MAX), "99999999H");
    }

    #[test]
    fn parses_what_it_writes_and_rejects_the_rest() {
        for d in [1, 999, 5_000_000, 100_000_000_000, 7_200_000_000_000] {
            let d = Duration::from_nanos(d);
            assert_eq!(parse(encode(d).as_bytes()), Some(d));
        }
        assert_eq!(parse(b"1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(parse(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse(b"123456789S"), None);
        assert_eq!(parse(b"5x"), None);
        assert_eq!(parse(b"S"), None);
        assert_eq!(parse(b"-1S"), None);
        assert_eq!(parse(b"+1S"), None);
    }
}
