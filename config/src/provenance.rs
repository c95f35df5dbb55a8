//! Where each resolved value came from: the built-in default, a preset, a line of
//! `connections.toml`, or (later) an attribute argument.

use std::fmt;

use crate::diagnostic::SourceSpan;
use crate::preset::Preset;

/// The origin of one setting's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// ephemos's built-in default (values no preset sets).
    BuiltIn,
    /// A preset's value.
    Preset(Preset),
    /// A value written in a file, with its place.
    File(SourceSpan),
    /// A value written in a `#[ephemos::client(...)]` argument.
    Attribute,
}

impl Origin {
    /// The place in a file, when the value was written in one.
    pub fn span(&self) -> Option<&SourceSpan> {
        match self {
            Origin::File(span) => Some(span),
            _ => None,
        }
    }

    /// Whether a user wrote the value (in a file or attribute), as opposed to a default.
    pub fn is_written(&self) -> bool {
        matches!(self, Origin::File(_) | Origin::Attribute)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in default"),
            Origin::Preset(preset) => write!(f, "preset {preset}"),
            Origin::File(span) => write!(f, "{span}"),
            Origin::Attribute => f.write_str("attribute"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub origin: Origin,
}

impl<T> Sourced<T> {
    /// Pairs a value with its origin.
    pub fn new(value: T, origin: Origin) -> Self {
        Self { value, origin }
    }
}

/// One line of a target's provenance: `pool.size = 8 (connections.toml:12:8)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The setting's key as written in `connections.toml` (`pool.size`,
    /// `methods.Charge.timeout`).
    pub key: String,
    /// The value, written as in `connections.toml` where the key is one; settings that
    /// several keys decide (`policy`, `server_authorization`, `identity`) are described.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} ({})", self.key, self.value, self.origin)
    }
}
