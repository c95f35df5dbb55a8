//! A loopback TCP proxy under the test's control: forward, refuse, reset, cut, freeze.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with new and existing connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward bytes both ways.
    Forward,
    /// Do not listen: connections are refused by the kernel (RST).
    Refuse,
    /// Accept, then close at once (the client sees EOF before any HTTP/2 bytes).
    Reset,
    /// Keep every connection open but forward nothing (a blackhole).
    Freeze,
}

struct Shared {
    accepts: Mutex<Vec<Instant>>,
    open: Mutex<usize>,
}

/// A running proxy in front of `upstream`.
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    /// The mode the accept loop has put in force (the listener closed for Refuse).
    applied: watch::Receiver<ProxyMode>,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, mode_rx) = watch::channel(ProxyMode::Forward);
        let (applied_tx, applied) = watch::channel(ProxyMode::Forward);
        let (cut, cut_rx) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            accepts: Mutex::new(Vec::new()),
            open: Mutex::new(0),
        });
        let task = tokio::spawn(accept_loop(
            Some(listener),
            addr,
            upstream,
            (mode_rx, applied_tx),
            cut_rx,
            shared.clone(),
        ));
        Proxy {
            addr,
            mode,
            applied,
            cut,
            shared,
            task,
        }
    }

    /// The address clients should dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes how the proxy treats connections from now on.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }

    /// Changes the mode and waits until it is in force (for Refuse: the listener is
    /// closed, so the next connection is refused by the kernel).
    pub async fn switch(&self, mode: ProxyMode) {
        self.set_mode(mode);
        let mut applied = self.applied.clone();
        let _ = applied.wait_for(|m| *m == mode).await;
    }

    /// Closes every open connection (both sides), as a network failure would.
    pub fn cut_all(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }

    /// When each connection was accepted, as measured here.
    pub fn accepts(&self) -> Vec<Instant> {
        self.shared.accepts.lock().unwrap().clone()
    }

    /// Connections currently open through the proxy.
    pub fn open_connections(&self) -> usize {
        *self.shared.open.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    upstream: SocketAddr,
    (mut mode, applied): (watch::Receiver<ProxyMode>, watch::Sender<ProxyMode>),
    cut: watch::Receiver<u64>,
    shared: Arc<Shared>,
) {
    loop {
        let current = *mode.borrow_and_update();
        if current == ProxyMode::Refuse {
            listener = None;
            applied.send_replace(current);
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let active = match &listener {
            Some(l) => l,
            None => {
                listener = Some(crate::echo::bind_retrying(addr).await);
                listener.as_ref().unwrap()
            }
        };
        applied.send_replace(current);
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return },
            accepted = active.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.accepts.lock().unwrap().push(Instant::now());
                // The mode may have changed while this connection was being accepted.
                if *mode.borrow() == ProxyMode::Reset {
                    drop(client);
                    continue;
                }
                tokio::spawn(forward(client, upstream, mode.clone(), cut.clone(), shared.clone()));
            }
        }
    }
}

async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Receiver<ProxyMode>,
    mut cut: watch::Receiver<u64>,
    shared: Arc<Shared>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    *shared.open.lock().unwrap() += 1;
    cut.mark_unchanged();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pump(client_read, server_write, mode.clone()) => {}
        _ = pump(server_read, client_write, mode) => {}
        _ = cut.changed() => {}
    }
    *shared.open.lock().unwrap() -= 1;
}

/// Copies bytes one way; while frozen, reads nothing and writes nothing.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while *mode.borrow_and_update() == ProxyMode::Freeze {
            if mode.changed().await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = mode.changed() => continue,
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
