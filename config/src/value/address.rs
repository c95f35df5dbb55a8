//! Target addresses: `host:port`, `[v6]:port`, `dns:///host:port`, `unix:/path`.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::InvalidValue;

const HELP: &str = "write `host:port`, `[v6]:port`, `dns:///host:port` or `unix:/path`";

/// Where a target's server listens.
///
/// Constructible in a `const` so a client's endpoints can be baked at compile time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// `host:port` or `[v6]:port`: a host name or IP literal (IPv6 kept without brackets).
    Tcp {
        /// Host name, IPv4 or IPv6 literal.
        host: Cow<'static, str>,
        /// TCP port, 1..=65535.
        port: u16,
    },
    /// `dns:///host:port`: resolved through DNS, every address it returns is an endpoint.
    Dns {
        /// The name to resolve.
        host: Cow<'static, str>,
        /// TCP port, 1..=65535.
        port: u16,
    },
    /// `unix:/path` (or `unix:///path`, `unix:relative`): a Unix domain socket.
    Unix {
        /// Filesystem path of the socket.
        path: Cow<'static, str>,
    },
}

impl Address {
    /// Parses one of the accepted address forms.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("unix:") {
            let path = match rest.strip_prefix("//") {
                // unix://path is an authority form: gRPC wants unix:///absolute/path.
                Some(after) if !after.starts_with('/') => {
                    return Err(InvalidValue::new(
                        format!("`{text}` names no absolute path"),
                        "write `unix:/abs/path` or `unix:///abs/path` (three slashes), or `unix:relative/path`",
                    ));
                }
                Some(after) => after,
                None => rest,
            };
            if path.is_empty() {
                return Err(InvalidValue::new(
                    "a unix socket address needs a path",
                    HELP,
                ));
            }
            return Ok(Address::Unix {
                path: Cow::Owned(path.to_owned()),
            });
        }
        if let Some(rest) = text.strip_prefix("dns:") {
            let host_port = match rest.strip_prefix("//") {
                Some(after) => after.strip_prefix('/').ok_or_else(|| {
                    InvalidValue::new(
                        "a DNS authority (`dns://server/...`) is not supported",
                        "write `dns:///host:port` (three slashes) to use the system resolver",
                    )
                })?,
                None => rest,
            };
            let (host, port) = split_host_port(host_port)?;
            return Ok(Address::Dns { host, port });
        }
        if text.contains("://") {
            return Err(InvalidValue::new(
                format!("unsupported address scheme in `{text}`"),
                format!("{HELP}; TLS is set by `identity`, not by an https:// scheme"),
            ));
        }
        let (host, port) = split_host_port(text)?;
        Ok(Address::Tcp { host, port })
    }

    /// The host name or IP literal, for TCP and DNS addresses.
    pub fn host(&self) -> Option<&str> {
        match self {
            Address::Tcp { host, .. } | Address::Dns { host, .. } => Some(host),
            Address::Unix { .. } => None,
        }
    }
}

fn split_host_port(text: &str) -> Result<(Cow<'static, str>, u16), InvalidValue> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| InvalidValue::new("missing `]` after an IPv6 address", HELP))?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| InvalidValue::new(format!("`{v6}` is not an IPv6 address"), HELP))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| InvalidValue::new("missing `:port` after the IPv6 address", HELP))?;
        (v6, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| InvalidValue::new(format!("`{text}` has no port"), HELP))?;
        if host.contains(':') {
            return Err(InvalidValue::new(
                "an IPv6 address needs brackets",
                "write `[::1]:50051`",
            ));
        }
        check_host(host)?;
        (host, port)
    };
    let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 && digits => p,
        _ => {
            return Err(InvalidValue::new(
                format!("invalid port `{port}`"),
                "a port is a number from 1 to 65535",
            ));
        }
    };
    Ok((Cow::Owned(host.to_owned()), port))
}

fn check_host(host: &str) -> Result<(), InvalidValue> {
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let valid_label = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    // An all-numeric last label is a malformed IPv4 address, not a name (RFC 3696).
    let numeric_top = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(valid_label) && !numeric_top {
        Ok(())
    } else {
        Err(InvalidValue::new(
            format!("`{host}` is not a valid host name or IP address"),
            "host names are dot-separated labels of letters, digits and `-`",
        ))
    }
}

impl From<std::net::SocketAddr> for Address {
    fn from(addr: std::net::SocketAddr) -> Self {
        Address::Tcp {
            host: Cow::Owned(addr.ip().to_string()),
            port: addr.port(),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Address::parse(text)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Dns { host, port } if host.contains(':') => {
                write!(f, "dns:///[{host}]:{port}")
            }
            Address::Dns { host, port } => write!(f, "dns:///{host}:{port}"),
            Address::Unix { path } => write!(f, "unix:{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_form_and_round_trips() {
        for (input, shown) in [
            ("payments.internal:8443", "payments.internal:8443"),
            ("127.0.0.1:50051", "127.0.0.1:50051"),
            ("[::1]:50051", "[::1]:50051"),
            (
                "dns:///payments.internal:8443",
                "dns:///payments.internal:8443",
            ),
            ("dns:payments:1", "dns:///payments:1"),
            ("unix:/run/app.sock", "unix:/run/app.sock"),
            ("unix:///run/app.sock", "unix:/run/app.sock"),
            ("localhost:65535", "localhost:65535"),
        ] {
            let address = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(address.to_string(), shown);
            assert_eq!(Address::parse(shown), Ok(address));
        }
    }

    #[test]
    fn rejects_malformed_addresses_with_a_reason() {
        for (input, reason) in [
            ("payments.internal", "no port"),
            ("payments:0", "invalid port"),
            ("payments:70000", "invalid port"),
            ("::1:50051", "brackets"),
            ("[::zz]:1", "not an IPv6"),
            ("[::1]", "missing `:port`"),
            ("bad_host:1", "not a valid host"),
            ("-bad:1", "not a valid host"),
            ("https://payments:443", "unsupported address scheme"),
            ("dns://8.8.8.8/payments:1", "authority"),
            ("unix:", "needs a path"),
            ("unix://run/a.sock", "no absolute path"),
            ("x:+80", "invalid port"),
            ("999.999.999.999:1", "not a valid host"),
            ("10.0.0:1", "not a valid host"),
            (":80", "not a valid host"),
        ] {
            let err = Address::parse(input).expect_err(input);
            assert!(err.problem.contains(reason), "{input}: {err}");
        }
    }
}
