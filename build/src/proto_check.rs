//! Checks targets against the compiled protos: each `service` must be a service of the
//! protos, and each `[targets.NAME.methods.M]` a method of it.

use ephemos_config::diagnostic::{Diagnostic, Diagnostics, SourceSpan, did_you_mean};
use ephemos_config::{Checked, ResolvedTarget};
use prost_types::FileDescriptorSet;

/// A service of the protos: its full name and its methods.
struct Service {
    name: String,
    methods: Vec<String>,
}

fn services(descriptors: &FileDescriptorSet) -> Vec<Service> {
    descriptors
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.iter().map(move |service| Service {
                name: if package.is_empty() {
                    service.name().to_owned()
                } else {
                    format!("{package}.{}", service.name())
                },
                methods: service.method.iter().map(|m| m.name().to_owned()).collect(),
            })
        })
        .collect()
}

/// Where the target's `service` is written (or, failing that, its name).
fn service_span(target: &ResolvedTarget) -> SourceSpan {
    target
        .provenance
        .iter()
        .find(|s| s.key == "service")
        .and_then(|s| s.origin.span().cloned())
        .unwrap_or_else(|| target.name_span.clone())
}

/// Every target whose service or methods are not in the protos, as errors with places.
pub fn check_services(checked: &Checked, descriptors: &FileDescriptorSet) -> Diagnostics {
    let services = services(descriptors);
    let mut diagnostics = Diagnostics::default();
    for target in &checked.targets {
        let Some(service_name) = &target.config.service else {
            continue;
        };
        let Some(service) = services.iter().find(|s| s.name == **service_name) else {
            let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
            let help = match did_you_mean(service_name, names.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`?"),
                None if names.is_empty() => "the protos declare no service".to_owned(),
                None => format!("the protos declare: {}", names.join(", ")),
            };
            diagnostics.push(
                Diagnostic::error(format!(
                    "target `{}`: no service `{service_name}` in the protos",
                    target.config.name
                ))
                .with_label("not a service of the compiled protos")
                .with_help(help)
                .at(service_span(target)),
            );
            continue;
        };
        for (method, span) in &target.methods {
            if service.methods.contains(method) {
                continue;
            }
            let help = match did_you_mean(method, service.methods.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("`{}` has: {}", service.name, service.methods.join(", ")),
            };
            diagnostics.push(
                Diagnostic::error(format!(
                    "target `{}`: `{}` has no method `{method}`",
                    target.config.name, service.name
                ))
                .with_label("not a method of the service")
                .with_help(help)
                .at(span.clone()),
            );
        }
    }
    diagnostics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptors(dir: &std::path::Path) -> FileDescriptorSet {
        std::fs::write(
            dir.join("pay.proto"),
            "syntax = \"proto3\";\npackage payments.v1;\nmessage M {}\n\
             service Payments { rpc Charge(M) returns (M); rpc GetBalance(M) returns (M); }\n",
        )
        .unwrap();
        protox::compile(["pay.proto"], [dir]).unwrap()
    }

    fn check(toml: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let checked = ephemos_config::check_str("connections.toml", toml);
        assert!(
            !checked.diagnostics.has_errors(),
            "{:?}",
            checked.diagnostics
        );
        check_services(&checked, &descriptors(dir.path()))
            .iter()
            .map(|d| {
                let at = d
                    .span
                    .as_ref()
                    .map(|s| s.start().to_string())
                    .unwrap_or_default();
                format!(
                    "{} | {} @ {at}",
                    d.message,
                    d.help.clone().unwrap_or_default()
                )
            })
            .collect()
    }

    const HEAD: &str = "[targets.p]\naddress = \"h:1\"\nserver_any = true\n";

    #[test]
    fn known_services_and_methods_pass() {
        let toml = format!(
            "{HEAD}service = \"payments.v1.Payments\"\n[targets.p.methods.Charge]\nretry = false\n"
        );
        assert!(check(&toml).is_empty());
    }

    #[test]
    fn a_misspelt_service_gets_a_suggestion_at_its_place() {
        let found = check(&format!("{HEAD}service = \"payments.v1.Payment\"\n"));
        assert_eq!(
            found,
            [
                "target `p`: no service `payments.v1.Payment` in the protos | did you mean `payments.v1.Payments`? @ 4:11"
            ]
        );
    }

    #[test]
    fn a_misspelt_method_gets_a_suggestion_at_its_name() {
        let toml = format!(
            "{HEAD}service = \"payments.v1.Payments\"\n[targets.p.methods.Charg]\nretry = false\n"
        );
        assert_eq!(
            check(&toml),
            [
                "target `p`: `payments.v1.Payments` has no method `Charg` | did you mean `Charge`? @ 5:20"
            ]
        );
        let unknown = format!(
            "{HEAD}service = \"payments.v1.Payments\"\n[targets.p.methods.Refund]\nretry = false\n"
        );
        assert!(
            check(&unknown)[0].contains("has: Charge, GetBalance"),
            "{:?}",
            check(&unknown)
        );
    }
}
