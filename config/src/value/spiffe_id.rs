//! SPIFFE IDs and trust domain names, checked by the rules of the SPIFFE-ID standard
//! (spiffe/spiffe `standards/SPIFFE-ID.md`, sections 2.1 to 2.3).

use std::borrow::Cow;
use std::fmt;

use super::InvalidValue;

const SCHEME: &str = "spiffe://";
const MAX_ID_BYTES: usize = 2048;
const MAX_TRUST_DOMAIN_BYTES: usize = 255;

/// A trust domain name such as `example.org` (lowercase letters, digits, `.`, `-`, `_`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(Cow<'static, str>);

impl TrustDomain {
    /// Parses `example.org` or `spiffe://example.org` (the form go-spiffe also accepts).
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let name = text.strip_prefix(SCHEME).unwrap_or(text);
        check_trust_domain(name)?;
        Ok(Self(Cow::Owned(name.to_owned())))
    }

    /// A trust domain from a name known to be valid; for generated code.
    #[doc(hidden)]
    pub const fn from_static_unchecked(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// The bare name, without scheme.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SPIFFE ID such as `spiffe://example.org/payments`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId(Cow<'static, str>);

impl SpiffeId {
    /// Parses and checks a SPIFFE ID.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let help = "a SPIFFE ID looks like `spiffe://example.org/path/to/workload`";
        if text.len() > MAX_ID_BYTES {
            return Err(InvalidValue::new(
                format!("a SPIFFE ID is at most {MAX_ID_BYTES} bytes"),
                help,
            ));
        }
        let rest = match text.strip_prefix(SCHEME) {
            Some(rest) => rest,
            None if text.to_ascii_lowercase().starts_with(SCHEME) => {
                return Err(InvalidValue::new(
                    "the scheme must be lowercase `spiffe://`",
                    help,
                ));
            }
            None => {
                return Err(InvalidValue::new(
                    format!("`{text}` does not start with `spiffe://`"),
                    help,
                ));
            }
        };
        let (trust_domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        check_trust_domain(trust_domain)?;
        check_path(path)?;
        Ok(Self(Cow::Owned(text.to_owned())))
    }

    /// A SPIFFE ID known to be valid; for generated code.
    #[doc(hidden)]
    pub const fn from_static_unchecked(id: &'static str) -> Self {
        Self(Cow::Borrowed(id))
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain part.
    pub fn trust_domain(&self) -> TrustDomain {
        let rest = &self.0[SCHEME.len()..];
        let end = rest.find('/').unwrap_or(rest.len());
        TrustDomain(Cow::Owned(rest[..end].to_owned()))
    }

    /// The path part, empty or starting with `/`.
    pub fn path(&self) -> &str {
        let rest = &self.0[SCHEME.len()..];
        &rest[rest.find('/').unwrap_or(rest.len())..]
    }
}

impl std::str::FromStr for SpiffeId {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(text)
    }
}

impl std::str::FromStr for TrustDomain {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TrustDomain::parse(text)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_trust_domain(name: &str) -> Result<(), InvalidValue> {
    let help =
        "a trust domain name uses lowercase letters, digits, `.`, `-` and `_`, e.g. `example.org`";
    if name.is_empty() {
        return Err(InvalidValue::new("the trust domain is empty", help));
    }
    if name.len() > MAX_TRUST_DOMAIN_BYTES {
        return Err(InvalidValue::new(
            format!("a trust domain name is at most {MAX_TRUST_DOMAIN_BYTES} bytes"),
            help,
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
    {
        let problem = if bad.is_ascii_uppercase() {
            format!("the trust domain `{name}` has an uppercase letter")
        } else if bad == ':' {
            format!("the trust domain `{name}` has a port, which SPIFFE IDs do not allow")
        } else if bad == '@' {
            format!("the trust domain `{name}` has user info, which SPIFFE IDs do not allow")
        } else {
            format!("the trust domain `{name}` has the character `{bad}`")
        };
        return Err(InvalidValue::new(problem, help));
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), InvalidValue> {
    let help =
        "path segments are non-empty, not `.` or `..`, and use letters, digits, `.`, `-` and `_`";
    if path.is_empty() {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(InvalidValue::new("the path has a trailing `/`", help));
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err(InvalidValue::new(
                "the path has an empty segment (`//`)",
                help,
            ));
        }
        if segment == "." || segment == ".." {
            return Err(InvalidValue::new(
                format!("the path has a `{segment}` segment"),
                help,
            ));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            let problem = match bad {
                '?' | '#' => "a SPIFFE ID has no query or fragment".to_owned(),
                _ => format!("the path has the character `{bad}`"),
            };
            return Err(InvalidValue::new(problem, help));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids_and_splits_them() {
        let id = SpiffeId::parse("spiffe://example.org/ns/prod/sa/payments").unwrap();
        assert_eq!(id.trust_domain().as_str(), "example.org");
        assert_eq!(id.path(), "/ns/prod/sa/payments");
        let bare = SpiffeId::parse("spiffe://td_1-x.example").unwrap();
        assert_eq!(bare.path(), "");
        assert!(SpiffeId::parse("spiffe://example.org/A.b-c_D").is_ok());
    }

    #[test]
    fn rejects_ids_the_standard_forbids() {
        for (input, reason) in [
            ("example.org/payments", "does not start with"),
            ("SPIFFE://example.org/x", "lowercase"),
            ("spiffe://", "empty"),
            ("spiffe:///x", "empty"),
            ("spiffe://Example.org/x", "uppercase"),
            ("spiffe://example.org:8443/x", "port"),
            ("spiffe://user@example.org/x", "user info"),
            ("spiffe://example.org/", "trailing"),
            ("spiffe://example.org//x", "empty segment"),
            ("spiffe://example.org/./x", "`.` segment"),
            ("spiffe://example.org/../x", "`..` segment"),
            ("spiffe://example.org/x?y=1", "query"),
            ("spiffe://example.org/x%20y", "character `%`"),
        ] {
            let err = SpiffeId::parse(input).expect_err(input);
            assert!(err.problem.contains(reason), "{input}: {err}");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(2048));
        assert!(SpiffeId::parse(&long).unwrap_err().problem.contains("2048"));
    }

    #[test]
    fn trust_domains_accept_both_forms() {
        assert_eq!(
            TrustDomain::parse("example.org").unwrap().as_str(),
            "example.org"
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org").unwrap().as_str(),
            "example.org"
        );
        assert!(TrustDomain::parse("Example.org").is_err());
        assert!(TrustDomain::parse(&"a".repeat(256)).is_err());
        assert!(TrustDomain::parse(&"a".repeat(255)).is_ok());
    }
}
