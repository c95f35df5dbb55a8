//! Building a [`Channel`]: from an address and settings, or from a resolved target of
//! `connections.toml`.

use std::sync::Arc;

use ephemos_config::Preset;
use ephemos_config::model::{ConnectionConfig, TargetConfig};
use ephemos_config::rules::{Floors, SettingProblem};
use ephemos_config::service_config::ServiceConfig;
use ephemos_config::value::Address;

use super::Channel;
use crate::ClientError;
use crate::connector::tls::TlsSettings;
use crate::identity::{Identity, IdentityError};

/// The floors settings given in code are held to: gRFC A8's and grpc-go's, as in the
/// file. The `testing` feature lowers them so tests can run keepalive and idle timers in
/// milliseconds (as grpc-go's tests lower its keepalive floor); never enable it in a
/// production build.
#[cfg(not(feature = "testing"))]
pub(crate) const FLOORS: Floors = Floors::GRPC;
#[cfg(feature = "testing")]
pub(crate) const FLOORS: Floors = Floors {
    keepalive_time: std::time::Duration::from_millis(1),
    idle_timeout: std::time::Duration::from_millis(1),
};

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
    /// Settings given in code break the rules `connections.toml` is held to.
    #[error("target `{target}`: invalid settings: {}", list(problems))]
    Settings {
        /// The target's name.
        target: String,
        /// Every rule broken, in the file's words.
        problems: Vec<SettingProblem>,
    },
}

fn list(problems: &[SettingProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
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

    /// Dial settings: timeouts, backoff, keepalive, idle timeout, message sizes. They are
    /// checked with `connections.toml`'s rules when the channel is created.
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
    /// connects. Fails when a setting given in code breaks a rule of `connections.toml`
    /// (the same words), or there is no endpoint.
    pub fn connect_lazy(self) -> Result<Channel, BuildError> {
        let problems = self.connection.problems(&FLOORS);
        if !problems.is_empty() {
            return Err(BuildError::Settings {
                target: self.target,
                problems,
            });
        }
        if self.endpoints.is_empty() {
            return Err(BuildError::NoEndpoints {
                target: self.target,
            });
        }
        let authority = self
            .endpoints
            .first()
            .map(authority_of)
            .unwrap_or_else(|| http::uri::Authority::from_static("localhost"));
        Ok(Channel::new(
            self.target.into(),
            authority,
            &self.endpoints,
            self.connection,
            &self.service_config,
            self.tls,
        ))
    }

    /// Creates the channel and waits until it is READY; fails with the reason of the
    /// failed attempt once every endpoint has failed one.
    pub async fn connect(self) -> Result<Channel, ClientError> {
        let channel = self.connect_lazy()?;
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
