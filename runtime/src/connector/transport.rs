//! Dials an [`Address`]: TCP (with DNS resolution, every resolved address in turn, and
//! TCP_NODELAY) or a unix socket. TLS, when an identity asks for it, wraps this.

use ephemos_config::value::Address;
use tokio::net::{TcpStream, UnixStream};
use tokio_util::either::Either;

use crate::error::ConnectError;

/// A connected byte stream: TCP or a unix socket.
pub(crate) type Transport = Either<TcpStream, UnixStream>;

/// A readable name of the peer, for messages.
pub(crate) fn peer_of(transport: &Transport) -> String {
    match transport {
        Either::Left(tcp) => tcp
            .peer_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string()),
        Either::Right(_) => "unix socket".to_owned(),
    }
}

/// Connects to `address`; the caller bounds the time this takes.
pub(crate) async fn dial(address: &Address) -> Result<Transport, ConnectError> {
    match address {
        Address::Unix { path } => UnixStream::connect(path.as_ref())
            .await
            .map(Either::Right)
            .map_err(|e| ConnectError::Transport {
                peer: format!("unix:{path}"),
                message: e.to_string(),
            }),
        Address::Tcp { host, port } | Address::Dns { host, port } => {
            let resolved: Vec<_> = tokio::net::lookup_host((host.as_ref(), *port))
                .await
                .map_err(|e| ConnectError::Resolve {
                    address: address.to_string(),
                    message: e.to_string(),
                })?
                .collect();
            if resolved.is_empty() {
                return Err(ConnectError::Resolve {
                    address: address.to_string(),
                    message: "no addresses".to_owned(),
                });
            }
            let mut last = None;
            for peer in resolved {
                match TcpStream::connect(peer).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(Either::Left(stream));
                    }
                    Err(e) => {
                        last = Some(ConnectError::Transport {
                            peer: peer.to_string(),
                            message: e.to_string(),
                        })
                    }
                }
            }
            Err(last.unwrap_or(ConnectError::Shutdown))
        }
    }
}
