//! Byte sizes ("4MiB", "512 KiB", or a plain number of bytes) for message-size limits.

use super::InvalidValue;

const HELP: &str = "write a size such as \"4MiB\", \"512KiB\" or a number of bytes";

const UNITS: [(&str, u64); 7] = [
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
];

/// Parses a byte size: an integer followed by an optional unit (B, KiB, MiB, GiB, kB, MB,
/// GB; case-insensitive; spaces allowed between number and unit).
pub fn parse_byte_size(text: &str) -> Result<u64, InvalidValue> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| InvalidValue::new(format!("invalid size `{text}`"), HELP))?;
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, m)| *m)
            .ok_or_else(|| InvalidValue::new(format!("unknown size unit `{unit}`"), HELP))?
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| InvalidValue::new("size is too large", HELP))
}

/// Formats a size with the largest binary unit that divides it ("4MiB", "1500B").
pub fn format_byte_size(bytes: u64) -> String {
    for (name, multiplier) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= multiplier && bytes.is_multiple_of(multiplier) {
            return format!("{}{name}", bytes / multiplier);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_byte_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_byte_size("16 mib"), Ok(16 << 20));
        assert_eq!(parse_byte_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_byte_size("1_000"), Ok(1000));
        assert_eq!(parse_byte_size("2MB"), Ok(2_000_000));
        assert!(
            parse_byte_size("4 parsecs")
                .unwrap_err()
                .problem
                .contains("unit")
        );
        assert!(parse_byte_size("MiB").is_err());
        assert!(parse_byte_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for n in [1, 1500, 4 << 20, 16 << 20, 3 << 30] {
            assert_eq!(parse_byte_size(&format_byte_size(n)), Ok(n));
        }
        assert_eq!(format_byte_size(4 << 20), "4MiB");
    }
}
