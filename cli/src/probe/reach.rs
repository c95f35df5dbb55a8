//! The steps below gRPC: resolving an endpoint's name, and a bare TCP (or unix socket)
//! connect, each timed. They say where a failure lies before the channel tries.

use std::time::{Duration, Instant};

use ephemos::Address;

/// What resolving one configured endpoint gave.
pub(crate) struct Resolution {
    /// The endpoint as configured.
    pub(crate) endpoint: String,
    /// How it was resolved: `literal`, `system resolver`, `unix socket`.
    pub(crate) method: &'static str,
    /// The socket addresses (or the socket path) it gave.
    pub(crate) addresses: Vec<Reachable>,
    /// How long resolution took.
    pub(crate) took: Duration,
    /// Why it failed, when it did.
    pub(crate) error: Option<String>,
}

/// Something a socket can be opened to.
#[derive(Clone)]
pub(crate) enum Reachable {
    /// A TCP socket address.
    Tcp(std::net::SocketAddr),
    /// A unix socket path.
    Unix(String),
}

impl std::fmt::Display for Reachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reachable::Tcp(addr) => write!(f, "{addr}"),
            Reachable::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

/// One timed connect.
pub(crate) struct TcpConnect {
    /// Where to.
    pub(crate) address: String,
    /// How long it took (or took to fail).
    pub(crate) took: Duration,
    /// Why it failed, when it did.
    pub(crate) error: Option<String>,
}

/// Resolves `endpoint` the way the channel will (IP literals as they are, names
/// through the system resolver).
pub(crate) async fn resolve(endpoint: &Address) -> Resolution {
    let started = Instant::now();
    let (method, result) = match endpoint {
        Address::Unix { path } => ("unix socket", Ok(vec![Reachable::Unix(path.to_string())])),
        Address::Tcp { host, port } | Address::Dns { host, port } => {
            match host.parse::<std::net::IpAddr>() {
                Ok(ip) => (
                    "literal",
                    Ok(vec![Reachable::Tcp(std::net::SocketAddr::new(ip, *port))]),
                ),
                Err(_) => (
                    "system resolver",
                    tokio::net::lookup_host((host.as_ref(), *port))
                        .await
                        .map(|addrs| addrs.map(Reachable::Tcp).collect())
                        .map_err(|e| e.to_string()),
                ),
            }
        }
    };
    let took = started.elapsed();
    let (addresses, error) = match result {
        Ok(addresses) if addresses.is_empty() => {
            (addresses, Some("the name has no addresses".to_owned()))
        }
        Ok(addresses) => (addresses, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    Resolution {
        endpoint: endpoint.to_string(),
        method,
        addresses,
        took,
        error,
    }
}

/// Opens and closes one socket to `address`, within `timeout`.
pub(crate) async fn tcp_connect(address: &Reachable, timeout: Duration) -> TcpConnect {
    let started = Instant::now();
    let result = match address {
        Reachable::Tcp(addr) => tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map(|r| r.map(drop)),
        Reachable::Unix(path) => {
            tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
                .await
                .map(|r| r.map(drop))
        }
    };
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!(
            "no answer within {} (the target's connect_timeout)",
            humantime::format_duration(timeout)
        )),
    };
    TcpConnect {
        address: address.to_string(),
        took: started.elapsed(),
        error,
    }
}
