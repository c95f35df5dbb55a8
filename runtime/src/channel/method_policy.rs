//! Per-method call settings from the service config, looked up by request path with
//! gRPC's precedence: `service/method`, then `service`, then the default (`""`).

use std::collections::HashMap;
use std::time::Duration;

use ephemos_config::service_config::ServiceConfig;

/// The settings the channel itself applies to a call (retry comes with the retry layer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MethodPolicy {
    pub(crate) timeout: Option<Duration>,
    pub(crate) wait_for_ready: bool,
}

/// Method policies by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct MethodPolicies {
    by_name: HashMap<String, MethodPolicy>,
    /// The policy of every call when no entry names a service.
    only_default: Option<MethodPolicy>,
}

impl MethodPolicies {
    pub(crate) fn new(config: &ServiceConfig) -> Self {
        let mut by_name = HashMap::new();
        for method_config in config.method_configs.iter() {
            let policy = MethodPolicy {
                timeout: method_config.timeout,
                wait_for_ready: method_config.wait_for_ready.unwrap_or(false),
            };
            for name in method_config.names.iter() {
                let key = match &name.method {
                    Some(method) => format!("{}/{method}", name.service),
                    None => name.service.to_string(),
                };
                // The first entry naming a method wins, as in gRPC.
                by_name.entry(key).or_insert(policy);
            }
        }
        let only_default = match by_name.len() {
            0 => Some(MethodPolicy::default()),
            1 => by_name.get("").copied(),
            _ => None,
        };
        Self {
            by_name,
            only_default,
        }
    }

    /// The policy for a request path such as `/payments.v1.Payments/Charge`.
    pub(crate) fn lookup(&self, path: &str) -> MethodPolicy {
        // Most configurations name no method or service: nothing to hash per call.
        if let Some(policy) = self.only_default {
            return policy;
        }
        let full = path.strip_prefix('/').unwrap_or(path);
        let service = full.split_once('/').map_or(full, |(service, _)| service);
        self.by_name
            .get(full)
            .or_else(|| self.by_name.get(service))
            .or_else(|| self.by_name.get(""))
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ephemos_config::check_str;

    #[test]
    fn method_then_service_then_default() {
        let checked = check_str(
            "c.toml",
            r#"
[targets.t]
service = "p.v1.P"
address = "h:1"
server_any = true
timeout = "10s"
[targets.t.methods.Charge]
timeout = "2s"
wait_for_ready = true
"#,
        );
        let policies = MethodPolicies::new(&checked.target("t").unwrap().config.service_config);
        let s = Duration::from_secs;
        assert_eq!(
            policies.lookup("/p.v1.P/Charge"),
            MethodPolicy {
                timeout: Some(s(2)),
                wait_for_ready: true
            }
        );
        assert_eq!(
            policies.lookup("/p.v1.P/Other"),
            MethodPolicy {
                timeout: Some(s(10)),
                wait_for_ready: false
            }
        );
        assert_eq!(policies.lookup("/other.Svc/X"), MethodPolicy::default());
    }
}
