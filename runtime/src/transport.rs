//! Dials an [`Address`]: TCP (with DNS resolution, every resolved address in turn, and
//! TCP_NODELAY) or a unix socket. TLS, when an identity asks for it, wraps this.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use ephemos_config::value::Address;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::error::ConnectError;

/// A connected byte stream.
#[derive(Debug)]
pub(crate) enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Transport {
    /// A readable name of the peer, for messages.
    pub(crate) fn peer(&self) -> String {
        match self {
            Transport::Tcp(s) => s
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string()),
            Transport::Unix(_) => "unix socket".to_owned(),
        }
    }
}

/// Connects to `address`; the caller bounds the time this takes.
pub(crate) async fn dial(address: &Address) -> Result<Transport, ConnectError> {
    match address {
        Address::Unix { path } => UnixStream::connect(path.as_ref())
            .await
            .map(Transport::Unix)
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
                        return Ok(Transport::Tcp(stream));
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

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Tcp(s) => s.is_write_vectored(),
            Transport::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
