//! The resolved configuration of one target: what a client is built from.
//!
//! Every type here can be written as a `const` (durations, `Cow<'static, _>`), which is
//! how the attribute macro bakes a client's settings into the binary. Nothing here knows
//! where a value came from; that is [`crate::provenance`]'s job.

mod connection;
mod identity;
mod pool;

pub use connection::{
    BackoffConfig, ConnectionConfig, Http2Config, KeepaliveConfig, MessageSizeLimits,
};
pub use identity::{IdentityConfig, IdentitySource, ServerAuthorization};
pub use pool::{HealthCheckConfig, PoolConfig};

use std::borrow::Cow;

use crate::preset::Preset;
use crate::service_config::ServiceConfig;
use crate::value::Address;

/// Everything a client needs to reach one target, resolved from the layers of
/// configuration (built-in default < preset < `[defaults]` < target < attribute).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// The target's name in `connections.toml` (`payments` in `[targets.payments]`).
    pub name: Cow<'static, str>,
    /// The fully qualified gRPC service the target serves, when declared.
    pub service: Option<Cow<'static, str>>,
    /// Where to connect: one address or several endpoints.
    pub endpoints: Cow<'static, [Address]>,
    /// The preset the values started from.
    pub preset: Preset,
    /// How the client proves who it is, and which trust domain it belongs to.
    pub identity: IdentityConfig,
    /// Which servers the client accepts.
    pub server_authorization: ServerAuthorization,
    /// Dial settings of each connection.
    pub connection: ConnectionConfig,
    /// How many connections, and their housekeeping.
    pub pool: PoolConfig,
    /// Client-side health checking (gRFC A17), when on.
    pub health_check: Option<HealthCheckConfig>,
    /// Per-method timeouts, retry and hedging policies, retry throttling.
    pub service_config: ServiceConfig,
}

/// A target's settings in one profile (`[targets.T.profiles.P]`, `[defaults.profiles.P]`),
/// baked beside its own settings; `EPHEMOS_PROFILE` picks one at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The profile's name.
    pub name: Cow<'static, str>,
    /// The target's settings in that profile.
    pub config: TargetConfig,
}
