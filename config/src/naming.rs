//! The names a target and a client type stand for each other by: a client type's
//! implied target (`OrderHistory` is `order_history`) and the type of the client
//! ephemos-build generates for a target (`order_history` is `OrderHistory`). The second
//! is not one-to-one (`orderHistory` is `OrderHistory` too), so its problems are
//! checked here, each with the places of the targets involved.

use crate::ResolvedTarget;
use crate::diagnostic::{Diagnostic, Diagnostics};

/// The target a client type stands for when its attribute names none: its name in
/// snake case (`Payments` is `payments`, `OrderHistory` is `order_history`).
pub fn implied_target(type_name: &str) -> String {
    heck::ToSnakeCase::to_snake_case(type_name)
}

/// The type of the client generated for a target: its name in upper camel case
/// (`order_history` is `OrderHistory`).
pub fn client_name(target: &str) -> String {
    heck::ToUpperCamelCase::to_upper_camel_case(target)
}

/// Why a generated client name cannot be a Rust type's name, if it cannot.
fn not_a_type_name(name: &str) -> Option<&'static str> {
    match name.chars().next() {
        None => Some("it is empty"),
        Some(c) if !c.is_ascii_alphabetic() => Some("it does not start with a letter"),
        Some(_) if name == "Self" => Some("`Self` is a Rust keyword"),
        Some(_) => None,
    }
}

/// Errors for the targets whose generated clients could not be declared: two targets
/// whose names give the same client name (both places named, the error at the second),
/// and a name that is not a Rust type name.
pub fn check_client_names<'a>(
    targets: impl IntoIterator<Item = &'a ResolvedTarget>,
) -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    let mut named: Vec<(String, &ResolvedTarget)> = Vec::new();
    for target in targets {
        let name = client_name(&target.config.name);
        if let Some(why) = not_a_type_name(&name) {
            diagnostics.push(
                Diagnostic::error(format!(
                    "target `{}` would generate a client named `{name}`, which is not a Rust type name",
                    target.config.name
                ))
                .with_label(why)
                .with_help(
                    "rename the target: a generated client is named after its target in upper camel case, \
                     so the name needs a letter after any leading `_`",
                )
                .at(target.name_span.clone()),
            );
            continue;
        }
        if let Some((_, first)) = named.iter().find(|(n, _)| *n == name) {
            diagnostics.push(
                Diagnostic::error(format!(
                    "targets `{}` ({}) and `{}` ({}) would both generate the client `{name}`",
                    first.config.name, first.name_span, target.config.name, target.name_span
                ))
                .with_label(format!("`{name}` again"))
                .with_help(format!(
                    "rename one of the two targets: a generated client is named after its target \
                     in upper camel case, so `{}` and `{}` give the same name",
                    first.config.name, target.config.name
                ))
                .at(target.name_span.clone()),
            );
            continue;
        }
        named.push((name, target));
    }
    diagnostics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml: &str) -> Vec<String> {
        let checked = crate::check_str("connections.toml", toml);
        assert!(
            !checked.diagnostics.has_errors(),
            "{:?}",
            checked.diagnostics
        );
        check_client_names(&checked.targets)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn target(name: &str) -> String {
        format!("[targets.{name}]\naddress = \"h:1\"\nidentity = \"plaintext\"\n")
    }

    #[test]
    fn names_go_both_ways() {
        assert_eq!(client_name("order_history"), "OrderHistory");
        assert_eq!(implied_target("OrderHistory"), "order_history");
        assert_eq!(implied_target("HTTPClient"), "http_client");
    }

    #[test]
    fn two_targets_with_one_client_name_are_an_error_naming_both_places() {
        let found = check(&format!(
            "{}{}",
            target("order_history"),
            target("orderHistory")
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(
                "targets `order_history` (connections.toml:1:10) and `orderHistory` \
                 (connections.toml:4:10) would both generate the client `OrderHistory`"
            ),
            "{found:?}"
        );
        assert!(
            found[0].contains("rename one of the two targets"),
            "{found:?}"
        );
        assert!(check(&format!("{}{}", target("orders"), target("history"))).is_empty());
    }

    #[test]
    fn a_name_that_is_no_type_name_is_an_error() {
        for name in ["__", "_1st", "self_"] {
            let found = check(&target(name));
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert!(found[0].contains("not a Rust type name"), "{found:?}");
        }
        assert!(check(&target("_private")).is_empty());
    }
}
