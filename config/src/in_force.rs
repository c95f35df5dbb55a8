//! Which resolved settings the runtime does not apply yet.
//!
//! A setting that validates must be a setting in force; where a layer of the runtime is
//! still to come, the build says so instead of baking the value and ignoring it.
//! `ephemos-build` prints each as a `cargo::warning`, `#[ephemos::client]` as a compiler
//! warning on the struct, and `ephemos check` beside the target. Nothing is left today:
//! the list is where a setting goes that the model gains before the runtime applies it.

use std::fmt;

use crate::model::TargetConfig;

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
    // Every setting the model holds is applied by the runtime: the pool (size, growth,
    // warm, cleanup, `dns:///` names followed at their TTL), health checking, retry and
    // hedging policies and retry throttling. A setting added to the model before its
    // runtime is built gets its entry here, and with it a warning wherever it is set.
    let _ = config;
    Vec::new()
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
    fn every_setting_of_the_model_is_in_force() {
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
        // A name followed by DNS, a pool of 10 that grows, health checking and hedging;
        // a retry policy, throttling and one connection: all in force.
        assert_eq!(not_in_force(&checked.target("a").unwrap().config), []);
        assert_eq!(not_in_force(&checked.target("b").unwrap().config), []);
        assert_eq!(
            not_in_force_message(&checked.target("b").unwrap().config, &[]),
            None
        );
    }
}
