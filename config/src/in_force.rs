//! Which resolved settings the runtime does not apply yet.
//!
//! A setting that validates must be a setting in force; where a layer of the runtime is
//! still to come, the build says so instead of baking the value and ignoring it.
//! `ephemos-build` prints each as a `cargo::warning`, `#[ephemos::client]` as a compiler
//! warning on the struct, and `ephemos check` beside the target. What is left: a
//! `dns:///` name is resolved at each connection attempt, not watched for its
//! addresses (the pool's DNS resolver is still to come).

use std::fmt;

use crate::model::TargetConfig;
use crate::value::Address;

/// A setting the runtime does not apply yet, and what happens instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotInForce {
    /// The setting as written (`pool.size = 10`).
    pub setting: String,
    /// What the channel does instead.
    pub instead: &'static str,
}

impl fmt::Display for NotInForce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.setting, self.instead)
    }
}

/// The settings of `config` that are not in force, in `connections.toml` order.
pub fn not_in_force(config: &TargetConfig) -> Vec<NotInForce> {
    let mut out = Vec::new();
    // The pool (size, growth, warm, cleanup) and health checking are in force.
    for endpoint in config.endpoints.iter() {
        if let Address::Dns { .. } = endpoint {
            out.push(NotInForce {
                setting: format!("endpoint `{endpoint}`"),
                instead: "resolved at each connection attempt and the first address that answers is used; \
                          the addresses are not each an endpoint and are not re-resolved on a schedule",
            });
        }
    }
    // Retry and hedging policies and retry throttling are in force (the runtime's retry
    // layer); the service config is not looked at here.
    out
}

/// One sentence for a target (and its profiles): what is set but not in force.
pub fn not_in_force_message(config: &TargetConfig, profiles: &[&TargetConfig]) -> Option<String> {
    let mut items: Vec<String> = Vec::new();
    for config in std::iter::once(config).chain(profiles.iter().copied()) {
        for item in not_in_force(config) {
            let text = item.to_string();
            if !items.contains(&text) {
                items.push(text);
            }
        }
    }
    (!items.is_empty()).then(|| {
        format!(
            "target `{}`: set but not in force in this version of ephemos: {}",
            config.name,
            items.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_str;

    #[test]
    fn each_preset_says_what_it_sets_that_is_not_applied() {
        let checked = check_str(
            "c.toml",
            "[targets.a]\naddress = \"dns:///h:1\"\nserver_any = true\npreset = \"high_throughput\"\n\
             health_check = true\npool = { max_size = 20, max_streams_per_connection = 50 }\n\
             [targets.a.hedging]\nmax_attempts = 3\n\
             [targets.b]\naddress = \"h:1\"\nserver_any = true\n\
             retry_throttling = { max_tokens = 10, token_ratio = 0.1 }\n",
        );
        assert!(
            !checked.diagnostics.has_errors(),
            "{:?}",
            checked.diagnostics
        );
        let a = not_in_force(&checked.target("a").unwrap().config);
        let settings: Vec<&str> = a.iter().map(|n| n.setting.as_str()).collect();
        assert_eq!(settings, ["endpoint `dns:///h:1`"]);
        // A retry policy, throttling, one connection: all in force; a pool of 10 that
        // grows, health checking and hedging (target a) too.
        assert_eq!(not_in_force(&checked.target("b").unwrap().config), []);
        assert_eq!(
            not_in_force_message(&checked.target("b").unwrap().config, &[]),
            None
        );
    }
}
