//! Building a [`Channel`]: from an address and settings, or from a resolved target of
//! `connections.toml`.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use ephemos_config::Preset;
use ephemos_config::model::{ConnectionConfig, TargetConfig};
use ephemos_config::service_config::ServiceConfig;
use ephemos_config::value::Address;
use tokio::sync::watch;

use super::{Channel, Inner, StateWatcher};
use crate::activity::Activity;
use crate::error::ConnectError;
use crate::identity::{Identity, IdentityError};
use crate::method_policy::MethodPolicies;
use crate::subchannel::Subchannel;
use crate::tls::TlsSettings;

/// Why a channel cannot be built from a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The target's identity cannot be set up.
    #[error("target `{target}`: {error}")]
    Identity {
        /// The target's name.
        target: String,
        /// Why.
        error: IdentityError,
    },
    /// No endpoint to connect to.
    #[error("target `{target}` has no endpoints")]
    NoEndpoints {
        /// The target's name.
        target: String,
    },
}

/// Configures and creates a [`Channel`].
#[derive(Debug, Clone)]
pub struct ChannelBuilder {
    target: String,
    endpoints: Vec<Address>,
    connection: ConnectionConfig,
    service_config: ServiceConfig,
    /// `None` is plaintext, which only [`Channel::plaintext`] (or a configuration saying
    /// `identity = "plaintext"`) can choose.
    tls: Option<Arc<TlsSettings>>,
}

impl ChannelBuilder {
    pub(super) fn new(endpoints: Vec<Address>, tls: Option<TlsSettings>) -> Self {
        let target = endpoints
            .first()
            .map_or_else(String::new, ToString::to_string);
        Self {
            target,
            endpoints,
            connection: Preset::Production.connection_config(),
            service_config: ServiceConfig::default(),
            tls: tls.map(Arc::new),
        }
    }

    pub(super) fn from_target(config: &TargetConfig) -> Result<Self, BuildError> {
        let identity =
            Identity::from_config(&config.identity).map_err(|error| BuildError::Identity {
                target: config.name.to_string(),
                error,
            })?;
        let tls = identity.map(|identity| {
            Arc::new(TlsSettings {
                identity,
                authorization: config.server_authorization.clone(),
            })
        });
        if config.endpoints.is_empty() {
            return Err(BuildError::NoEndpoints {
                target: config.name.to_string(),
            });
        }
        Ok(Self {
            target: config.name.to_string(),
            endpoints: config.endpoints.to_vec(),
            connection: config.connection,
            service_config: config.service_config.clone(),
            tls,
        })
    }

    /// The name used in messages and logs (the target's name in `connections.toml`).
    pub fn target_name(mut self, name: impl Into<String>) -> Self {
        self.target = name.into();
        self
    }

    /// Connects to these endpoints (one connection each) instead of the one address.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = Address>) -> Self {
        self.endpoints = endpoints.into_iter().collect();
        self
    }

    /// Dial settings: timeouts, backoff, keepalive, idle timeout, message sizes.
    pub fn connection(mut self, config: ConnectionConfig) -> Self {
        self.connection = config;
        self
    }

    /// Per-method timeouts and wait-for-ready (retry policies arrive with the retry layer).
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service_config = config;
        self
    }

    /// Creates the channel without any I/O: the first call (or [`Channel::connect`])
    /// connects.
    pub fn connect_lazy(self) -> Channel {
        let activity = Activity::new();
        let changed = Arc::new(watch::channel(0u64).0);
        let target: Arc<str> = self.target.into();
        let subchannels: Vec<Subchannel> = self
            .endpoints
            .iter()
            .map(|address| {
                Subchannel::spawn(
                    target.clone(),
                    address.clone(),
                    self.connection,
                    self.tls.clone(),
                    activity.clone(),
                    changed.clone(),
                )
            })
            .collect();
        let watcher = StateWatcher::new(
            subchannels.iter().map(Subchannel::watch).collect(),
            changed.subscribe(),
        );
        let authority = self
            .endpoints
            .first()
            .map(authority_of)
            .unwrap_or_else(|| http::uri::Authority::from_static("localhost"));
        Channel {
            inner: Arc::new(Inner {
                target,
                authority,
                subchannels,
                next: AtomicUsize::new(0),
                activity,
                methods: MethodPolicies::new(&self.service_config),
                limits: self.connection.max_message_size,
                watcher,
                changed: changed.subscribe(),
            }),
        }
    }

    /// Creates the channel and waits until it is READY, at most the connect timeout.
    /// Fails with the reason of the first failed attempt, or a timeout.
    pub async fn connect(self) -> Result<Channel, ConnectError> {
        let channel = self.connect_lazy();
        channel.connect().await?;
        Ok(channel)
    }
}

/// The `:authority` of requests: the address as configured (a unix socket has none).
fn authority_of(address: &Address) -> http::uri::Authority {
    let text = match address {
        Address::Unix { .. } => "localhost".to_owned(),
        other => other.to_string().trim_start_matches("dns:///").to_owned(),
    };
    text.parse()
        .unwrap_or_else(|_| http::uri::Authority::from_static("localhost"))
}
