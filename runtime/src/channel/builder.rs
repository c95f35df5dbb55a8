//! Building a [`Channel`]: from an address and settings, or from a resolved target of
//! `connections.toml`.

use crate::interceptor::Interceptors;
use std::sync::Arc;

use ephemos_config::Preset;
use ephemos_config::model::{
    ConnectionConfig, HealthCheckConfig, IdentityConfig, IdentitySource, PoolConfig,
    ServerAuthorization, TargetConfig,
};
use ephemos_config::rules::{Floors, SettingProblem};
use ephemos_config::service_config::ServiceConfig;
use ephemos_config::value::Address;

use super::Channel;
use crate::ClientError;
use crate::connector::tls::TlsSettings;
use crate::identity::{Identity, IdentityError};
use crate::pool::PoolSettings;
use crate::pool::dns::NameServers;
use crate::subchannel::health::HealthCheck;

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
    /// Built outside a tokio runtime: the channel's connections are tasks, and need one.
    #[error(
        "target `{target}`: a channel is built inside a tokio runtime (its connections are \
         tasks); build it in async code, or within `Runtime::enter`"
    )]
    NoRuntime {
        /// The target's name.
        target: String,
    },
    /// Identity propagation asked of a plaintext channel, which has no identity to send.
    #[error(
        "target `{target}` propagates the caller's identity but uses plaintext: it has no \
         SPIFFE ID to send; give it a TLS identity, or do not propagate"
    )]
    PropagationWithoutIdentity {
        /// The target's name.
        target: String,
    },
    /// No endpoint to connect to.
    #[error("target `{target}` has no endpoints")]
    NoEndpoints {
        /// The target's name.
        target: String,
    },
    /// No TLS, yet servers to accept are named: the rule could not be checked.
    #[error(
        "target `{target}` names servers to accept ({authorization}) but uses plaintext: \
         give it a TLS identity, or accept any server"
    )]
    PlaintextAuthorization {
        /// The target's name.
        target: String,
        /// The rule that cannot be checked without TLS.
        authorization: String,
    },
    /// TLS without a rule for which servers to accept (a plaintext builder given an
    /// identity): never a silent "accept any".
    #[error(
        "target `{target}` has a TLS identity but no rule for which servers to accept: \
         call server_authorization(..) (ServerAuthorization::Any accepts any)"
    )]
    NoServerAuthorization {
        /// The target's name.
        target: String,
    },
    /// The profile asked for (`EPHEMOS_PROFILE`, or in code) was not baked into the client.
    #[error(
        "target `{target}`: no profile `{profile}` was baked into this client; {}",
        known_profiles(known)
    )]
    UnknownProfile {
        /// The target's name.
        target: String,
        /// The profile asked for.
        profile: String,
        /// The profiles baked, from `connections.toml` when the crate was compiled.
        known: Vec<String>,
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

fn known_profiles(known: &[String]) -> String {
    let unset = "unset EPHEMOS_PROFILE for the target's own settings";
    if known.is_empty() {
        format!("connections.toml declares no profile: {unset}")
    } else {
        let names: Vec<String> = known.iter().map(|n| format!("`{n}`")).collect();
        format!("baked: {} (or {unset})", names.join(", "))
    }
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
    pool: PoolConfig,
    health_check: Option<HealthCheckConfig>,
    name_servers: NameServers,
    service_config: ServiceConfig,
    identity: IdentityChoice,
    /// `None` until said: [`Channel::plaintext`] names none, and TLS without one is an
    /// error, never a silent "accept any server".
    authorization: Option<ServerAuthorization>,
    interceptors: Interceptors,
    propagate_identity: bool,
}

/// Where the channel's identity comes from. Plaintext only when chosen: by
/// [`Channel::plaintext`] or a configuration saying `identity = "plaintext"`.
#[derive(Debug, Clone)]
enum IdentityChoice {
    /// From a configuration: set up when the channel is created, so an override given
    /// in code replaces it before any file is read or agent asked.
    Config(IdentityConfig),
    /// Made in code.
    Made(Identity),
    Plaintext,
}

impl ChannelBuilder {
    pub(super) fn new(endpoints: Vec<Address>, tls: Option<TlsSettings>) -> Self {
        let target = endpoints
            .first()
            .map_or_else(String::new, ToString::to_string);
        let (identity, authorization) = match tls {
            Some(tls) => (IdentityChoice::Made(tls.identity), Some(tls.authorization)),
            None => (IdentityChoice::Plaintext, None),
        };
        Self {
            target,
            endpoints,
            connection: Preset::Production.connection_config(),
            pool: Preset::Production.pool_config(),
            health_check: None,
            name_servers: NameServers::System,
            service_config: ServiceConfig::default(),
            identity,
            authorization,
            interceptors: Interceptors::default(),
            propagate_identity: false,
        }
    }

    pub(super) fn from_target(config: &TargetConfig) -> Self {
        Self {
            target: config.name.to_string(),
            endpoints: config.endpoints.to_vec(),
            connection: config.connection,
            pool: config.pool,
            health_check: config.health_check.clone(),
            name_servers: NameServers::System,
            service_config: config.service_config.clone(),
            identity: IdentityChoice::Config(config.identity.clone()),
            authorization: Some(config.server_authorization.clone()),
            interceptors: Interceptors::default(),
            propagate_identity: false,
        }
    }

    /// Presents this identity instead of the configured one (an [`Identity`] made in
    /// code: `Identity::files(..)` with the deployment's paths, a Workload API socket
    /// found at run time). The server authorization stays as configured.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = IdentityChoice::Made(identity);
        self
    }

    /// Takes the identity from this source instead of the configured one, keeping the
    /// configured trust domain: `IdentitySource::Files { .. }` with the paths the
    /// deployment mounts, say. Set up when the channel is created.
    pub fn identity_source(mut self, source: IdentitySource) -> Self {
        let trust_domain = match &self.identity {
            IdentityChoice::Config(config) => config.trust_domain.clone(),
            _ => None,
        };
        self.identity = IdentityChoice::Config(IdentityConfig {
            source,
            trust_domain,
        });
        self
    }

    /// Accepts the servers this rule allows instead of the configured rule.
    pub fn server_authorization(mut self, authorization: ServerAuthorization) -> Self {
        self.authorization = Some(authorization);
        self
    }

    /// The name used in messages and logs (the target's name in `connections.toml`).
    pub fn target_name(mut self, name: impl Into<String>) -> Self {
        self.target = name.into();
        self
    }

    /// Connects to these endpoints (`pool.size` connections each) instead of the
    /// configured ones.
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

    /// The pool: `size` connections per endpoint (and `warm` to open them at once);
    /// checked with `connections.toml`'s rules when the channel is created.
    pub fn pool(mut self, config: PoolConfig) -> Self {
        self.pool = config;
        self
    }

    /// Client-side health checking (gRFC A17): each connection watches
    /// `grpc.health.v1.Health` for `service_name` and takes calls only while the server
    /// says SERVING (or has no health service). `None` turns it off.
    pub fn health_check(mut self, config: Option<HealthCheckConfig>) -> Self {
        self.health_check = config;
        self
    }

    /// Resolves `dns:///` endpoints with these name servers (UDP, then TCP) instead of
    /// the system's configuration (`/etc/resolv.conf` and the hosts file).
    pub fn dns_servers(mut self, servers: impl IntoIterator<Item = std::net::SocketAddr>) -> Self {
        self.name_servers = NameServers::These(servers.into_iter().collect());
        self
    }

    /// Adds an interceptor: `f` sees each call's path and outgoing metadata before the
    /// call is sent, and may change the metadata or end the call with a status
    /// ([`crate::interceptor`]). Interceptors run in the order they were added, once per
    /// call; every attempt carries what they wrote.
    pub fn interceptor(
        mut self,
        f: impl Fn(&str, &mut tonic::metadata::MetadataMap) -> Result<(), tonic::Status>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.interceptors.push(std::sync::Arc::new(f));
        self
    }

    /// Sends, on every attempt, the SPIFFE ID this client presented on the attempt's
    /// connection in the [`CALLER_ID_HEADER`](crate::interceptor::CALLER_ID_HEADER)
    /// metadata (`ephemos-caller-spiffe-id`): the reference's identity propagation, for
    /// a server's logs and for the services it calls in turn. Information only: the ID
    /// is the one the TLS handshake proved, but a header proves nothing to a server,
    /// which authorizes by [`crate::server::peer_id`]. Needs a TLS identity (a
    /// plaintext channel fails to build).
    pub fn propagate_identity(mut self, on: bool) -> Self {
        self.propagate_identity = on;
        self
    }

    /// Per-method timeouts, wait-for-ready, retry and hedging policies, and the channel's
    /// retry throttling.
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service_config = config;
        self
    }

    /// Creates the channel without any I/O: the first call (or [`Channel::connect`])
    /// connects. Fails when a setting given in code breaks a rule of `connections.toml`
    /// (the same words), there is no endpoint, the identity cannot be set up, or a
    /// plaintext channel is told which servers to accept, or it is called outside a
    /// tokio runtime.
    pub fn connect_lazy(mut self) -> Result<Channel, BuildError> {
        // gRFC A105's service-config key means the same as `pool.max_size`.
        if let Some(scaling) = self.service_config.connection_scaling {
            self.pool.max_size = scaling.max_connections_per_subchannel;
        }
        let mut problems = self.connection.problems(&FLOORS);
        problems.extend(self.pool.problems());
        problems.extend(self.service_config.problems());
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
        let identity = match self.identity {
            IdentityChoice::Config(config) => {
                Identity::from_config(&config).map_err(|error| BuildError::Identity {
                    target: self.target.clone(),
                    error,
                })?
            }
            IdentityChoice::Made(identity) => Some(identity),
            IdentityChoice::Plaintext => None,
        };
        let tls = match (identity, self.authorization) {
            (Some(identity), Some(authorization)) => Some(Arc::new(TlsSettings {
                identity,
                authorization,
                propagate_identity: self.propagate_identity,
            })),
            (Some(_), None) => {
                return Err(BuildError::NoServerAuthorization {
                    target: self.target,
                });
            }
            (None, Some(authorization)) if authorization != ServerAuthorization::Any => {
                return Err(BuildError::PlaintextAuthorization {
                    target: self.target,
                    authorization: authorization.to_string(),
                });
            }
            (None, _) if self.propagate_identity => {
                return Err(BuildError::PropagationWithoutIdentity {
                    target: self.target,
                });
            }
            (None, _) => None,
        };
        // Last: every setting is checked with or without a runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BuildError::NoRuntime {
                target: self.target,
            });
        }
        let authority = self
            .endpoints
            .first()
            .map(authority_of)
            .unwrap_or_else(|| http::uri::Authority::from_static("localhost"));
        let health = self
            .health_check
            .map(|check| HealthCheck::new(check.service_name.into_owned(), authority.clone()));
        Ok(Channel::new(
            self.target.into(),
            authority,
            &self.endpoints,
            self.connection,
            PoolSettings {
                config: self.pool,
                health,
                name_servers: self.name_servers,
            },
            &self.service_config,
            tls,
            self.interceptors,
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
