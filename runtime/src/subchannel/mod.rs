//! A subchannel: one HTTP/2 connection to one address, with its state machine
//! (IDLE, CONNECTING, READY, TRANSIENT_FAILURE, SHUTDOWN), connection backoff,
//! keepalive, idle timeout and GOAWAY handling.
//!
//! A background task (the [driver](driver)) owns the connection's life; callers see it
//! through a `watch` of [`View`]: the state, the live connection when READY, and the last
//! connect error. Reading it is a clone of two `Arc`s; there is no lock shared between
//! subchannels.

mod connect;
mod driver;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ephemos_config::model::ConnectionConfig;
use ephemos_config::value::Address;
use ephemos_config::value::SpiffeId;
use hyper::client::conn::http2::SendRequest;
use tokio::sync::{Notify, watch};

use crate::activity::Activity;
use crate::body::RequestBody;
use crate::error::ConnectError;
use crate::state::ConnectivityState;
use crate::tls::TlsSettings;

/// A READY connection as callers see it.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) sender: SendRequest<RequestBody>,
    /// The server's verified SPIFFE ID, over TLS.
    pub(crate) server_id: Option<SpiffeId>,
    /// Set as soon as the server's GOAWAY is read: take no new calls.
    pub(crate) draining: Arc<AtomicBool>,
}

impl Connection {
    /// Whether a new call may be sent on this connection.
    pub(crate) fn usable(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && !self.sender.is_closed()
    }
}

/// What callers see of a subchannel.
#[derive(Clone)]
pub(crate) struct View {
    pub(crate) state: ConnectivityState,
    /// The connection, while READY.
    pub(crate) connection: Option<Connection>,
    /// Why the last attempt failed, kept until the next attempt succeeds.
    pub(crate) last_error: Option<ConnectError>,
}

struct Shared {
    view: watch::Sender<View>,
    /// Set by callers that want a connection; the driver clears it when it starts an
    /// attempt, so a burst of calls does not leave a reconnect for later.
    connect_requested: AtomicBool,
    wake: Notify,
    shutdown: watch::Sender<bool>,
    /// Bumped on every state change of any subchannel of the channel.
    changed: Arc<watch::Sender<u64>>,
}

impl Shared {
    fn publish(&self, update: impl FnOnce(&mut View)) {
        let mut changed = false;
        self.view.send_modify(|view| {
            let before = view.state;
            update(view);
            changed = view.state != before;
        });
        if changed {
            self.changed.send_modify(|generation| *generation += 1);
        }
    }
}

/// The handle a channel keeps; dropping it shuts the subchannel down.
pub(crate) struct Subchannel {
    shared: Arc<Shared>,
    view: watch::Receiver<View>,
}

impl Subchannel {
    /// Creates the subchannel and its driver task; no I/O happens until a connection is
    /// requested.
    pub(crate) fn spawn(
        target: Arc<str>,
        address: Address,
        config: ConnectionConfig,
        tls: Option<Arc<TlsSettings>>,
        activity: Arc<Activity>,
        changed: Arc<watch::Sender<u64>>,
    ) -> Self {
        let (view_tx, view) = watch::channel(View {
            state: ConnectivityState::Idle,
            connection: None,
            last_error: None,
        });
        let shared = Arc::new(Shared {
            view: view_tx,
            connect_requested: AtomicBool::new(false),
            wake: Notify::new(),
            shutdown: watch::channel(false).0,
            changed,
        });
        // Subscribed here, not in the task: a drop before the task first runs is then
        // still seen as a change.
        let shutdown = shared.shutdown.subscribe();
        tokio::spawn(driver::run(
            shared.clone(),
            shutdown,
            driver::Settings {
                target,
                address,
                config,
                tls,
                activity,
            },
        ));
        Self { shared, view }
    }

    /// The server's verified SPIFFE ID, while READY over TLS.
    pub(crate) fn server_id(&self) -> Option<SpiffeId> {
        self.view.borrow().connection.as_ref()?.server_id.clone()
    }

    /// The current view (a cheap clone).
    pub(crate) fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A receiver of the view, for watchers that must not keep the channel alive.
    pub(crate) fn watch(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    /// Asks the driver to connect if it is IDLE (no effect otherwise).
    pub(crate) fn request_connect(&self) {
        self.shared.connect_requested.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl Drop for Subchannel {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
