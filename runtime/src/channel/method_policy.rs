//! Per-method call settings from the service config, looked up by request path with
//! gRPC's precedence: `service/method`, then `service`, then the default (`""`).

use std::collections::HashMap;
use std::time::Duration;

use ephemos_config::service_config::{CallPolicy, ServiceConfig};

/// A method's settings: the facade applies the timeout and wait-for-ready, the retry
/// layer the call policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MethodPolicy {
    pub(crate) timeout: Option<Duration>,
    pub(crate) wait_for_ready: bool,
    /// Index into [`MethodPolicies::call_policies`].
    pub(crate) call_policy: Option<u16>,
}

/// Method policies by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct MethodPolicies {
    by_name: HashMap<String, MethodPolicy>,
    /// The policy of every call when no entry names a service.
    only_default: Option<MethodPolicy>,
    /// The retry and hedging policies the entries name, in order.
    call_policies: Vec<CallPolicy>,
}

impl MethodPolicies {
    pub(crate) fn new(config: &ServiceConfig) -> Self {
        let mut by_name = HashMap::new();
        let mut call_policies = Vec::new();
        for method_config in config.method_configs.iter() {
            let call_policy = method_config.policy.as_ref().and_then(|p| {
                let index = u16::try_from(call_policies.len()).ok()?;
                call_policies.push(p.clone());
                Some(index)
            });
            let policy = MethodPolicy {
                timeout: method_config.timeout,
                wait_for_ready: method_config.wait_for_ready.unwrap_or(false),
                call_policy,
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
            call_policies,
        }
    }

    /// The call policies, indexed by [`MethodPolicy::call_policy`].
    pub(crate) fn call_policies(&self) -> &[CallPolicy] {
        &self.call_policies
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
                wait_for_ready: true,
                call_policy: Some(1),
            }
        );
        assert_eq!(
            policies.lookup("/p.v1.P/Other"),
            MethodPolicy {
                timeout: Some(s(10)),
                wait_for_ready: false,
                call_policy: Some(0),
            }
        );
        assert_eq!(policies.lookup("/other.Svc/X"), MethodPolicy::default());
        // The production preset's retry policy, for the service and for its method.
        assert_eq!(policies.call_policies().len(), 2);
    }
}
