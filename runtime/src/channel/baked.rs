//! [`BakedTarget`]: what `#[ephemos::client]` baked into the binary for one client (its
//! target's settings, and the target's settings in each profile of `connections.toml`),
//! and the choice of a profile at run time, by `EPHEMOS_PROFILE` or in code. Nothing
//! here reads TOML: every profile was resolved and checked when the crate compiled.

use ephemos_config::model::{Profile, TargetConfig};

use super::{BuildError, Channel, ChannelBuilder};

/// The variable that picks a client's profile at run time.
pub const PROFILE_VARIABLE: &str = "EPHEMOS_PROFILE";

/// A client's baked settings: the target's own and one per profile.
#[derive(Debug, Clone, Copy)]
pub struct BakedTarget {
    /// The target's own settings (no profile).
    pub config: &'static TargetConfig,
    /// The target's settings in each profile `connections.toml` declared.
    pub profiles: &'static [Profile],
}

impl BakedTarget {
    /// The settings of `profile`, or the target's own for `None` (or `""`); an unknown
    /// profile is an error listing the baked ones.
    pub fn select(&self, profile: Option<&str>) -> Result<&'static TargetConfig, BuildError> {
        match profile.filter(|p| !p.is_empty()) {
            None => Ok(self.config),
            Some(name) => self
                .profiles
                .iter()
                .find(|p| p.name == name)
                .map(|p| &p.config)
                .ok_or_else(|| BuildError::UnknownProfile {
                    target: self.config.name.to_string(),
                    profile: name.to_owned(),
                    known: self.profile_names().map(str::to_owned).collect(),
                }),
        }
    }

    /// The settings of the profile `EPHEMOS_PROFILE` names (the target's own when it is
    /// unset or empty).
    pub fn from_env(&self) -> Result<&'static TargetConfig, BuildError> {
        match std::env::var_os(PROFILE_VARIABLE) {
            None => self.select(None),
            Some(value) => match value.to_str() {
                Some(name) => self.select(Some(name)),
                None => self.select(Some(&value.to_string_lossy())),
            },
        }
    }

    /// The names of the baked profiles, in `connections.toml` order.
    pub fn profile_names(&self) -> impl Iterator<Item = &'static str> {
        self.profiles.iter().map(|p| &*p.name)
    }

    /// A channel builder for the profile `EPHEMOS_PROFILE` names.
    pub fn builder(&self) -> Result<ChannelBuilder, BuildError> {
        Ok(Channel::from_target(self.from_env()?))
    }

    /// A channel builder for `profile` (`None`: the target's own settings), whatever
    /// `EPHEMOS_PROFILE` says.
    pub fn builder_for_profile(&self, profile: Option<&str>) -> Result<ChannelBuilder, BuildError> {
        Ok(Channel::from_target(self.select(profile)?))
    }
}
