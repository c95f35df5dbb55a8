//! gRPC status codes by name or number, as retry and hedging policies list them.

use std::fmt;

use super::InvalidValue;

macro_rules! codes {
    ($($variant:ident = $number:literal, $name:literal;)*) => {
        /// A gRPC status code (grpc/grpc `doc/statuscodes.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum Code {
            $($variant = $number,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: [Code; 17] = [$(Code::$variant,)*];

            /// The canonical upper-case name, e.g. `UNAVAILABLE`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    Ok = 0, "OK";
    Cancelled = 1, "CANCELLED";
    Unknown = 2, "UNKNOWN";
    InvalidArgument = 3, "INVALID_ARGUMENT";
    DeadlineExceeded = 4, "DEADLINE_EXCEEDED";
    NotFound = 5, "NOT_FOUND";
    AlreadyExists = 6, "ALREADY_EXISTS";
    PermissionDenied = 7, "PERMISSION_DENIED";
    ResourceExhausted = 8, "RESOURCE_EXHAUSTED";
    FailedPrecondition = 9, "FAILED_PRECONDITION";
    Aborted = 10, "ABORTED";
    OutOfRange = 11, "OUT_OF_RANGE";
    Unimplemented = 12, "UNIMPLEMENTED";
    Internal = 13, "INTERNAL";
    Unavailable = 14, "UNAVAILABLE";
    DataLoss = 15, "DATA_LOSS";
    Unauthenticated = 16, "UNAUTHENTICATED";
}

impl Code {
    /// The numeric value.
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The code with this number, if there is one.
    pub fn from_number(number: i64) -> Option<Code> {
        Code::ALL
            .into_iter()
            .find(|c| i64::from(c.number()) == number)
    }

    /// Parses a name (case-insensitive, e.g. `unavailable`) or a number (`14`).
    pub fn parse(text: &str) -> Result<Code, InvalidValue> {
        let text = text.trim();
        if let Ok(number) = text.parse::<i64>() {
            return Code::from_number(number).ok_or_else(|| {
                InvalidValue::new(
                    format!("there is no status code {number}"),
                    "status code numbers go from 0 (OK) to 16 (UNAUTHENTICATED)",
                )
            });
        }
        Code::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                InvalidValue::new(
                    format!("unknown status code `{text}`"),
                    crate::diagnostic::unknown_name_help(
                        &text.to_ascii_uppercase(),
                        Code::ALL.iter().map(|c| c.name()),
                    ),
                )
            })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_case_insensitively_and_numbers() {
        assert_eq!(Code::parse("UNAVAILABLE"), Ok(Code::Unavailable));
        assert_eq!(Code::parse("deadline_exceeded"), Ok(Code::DeadlineExceeded));
        assert_eq!(Code::parse("14"), Ok(Code::Unavailable));
        assert_eq!(Code::parse("16"), Ok(Code::Unauthenticated));
        assert_eq!(Code::parse("0"), Ok(Code::Ok));
        assert!(Code::parse("17").is_err());
        let err = Code::parse("UNAVAILBLE").unwrap_err();
        assert!(err.help.contains("UNAVAILABLE"), "{err}");
    }

    #[test]
    fn numbers_match_the_grpc_table() {
        for (i, code) in Code::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(code.number()), i);
            assert_eq!(Code::from_number(i as i64), Some(code));
        }
    }
}
