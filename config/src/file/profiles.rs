//! `[defaults.profiles.NAME]` and `[targets.T.profiles.NAME]`: settings for one
//! environment (development, staging, ...). Every profile is resolved and checked when
//! the crate compiles, like the target itself; at run time `EPHEMOS_PROFILE` picks one
//! of the baked results, and no TOML is read.
//!
//! A profile may set what its table's owner may set, except what names the service and
//! its methods (`service`, `methods`, `service_config`): those are the same in every
//! environment.

use std::ops::Range;

use super::settings::{read_call_settings, read_connection_settings};
use super::table::{Field, Reader};
use super::{ProfileTable, read_endpoints};
use crate::diagnostic::Diagnostic;
use crate::layer::Layer;
use crate::value::InvalidValue;

/// Whose profiles are being read: the endpoints belong to targets only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Defaults,
    Target,
}

/// A profile's name: letters, digits, `_` and `-` (it is written in `EPHEMOS_PROFILE`).
pub(crate) fn check_profile_name(name: &str) -> Result<(), InvalidValue> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(InvalidValue::new(
            format!("`{name}` is not a valid profile name"),
            "a profile name has only letters, digits, `_` and `-` (it is the value of EPHEMOS_PROFILE)",
        ))
    }
}

/// Reads a `profiles` table; every problem lands in `reader`.
pub(crate) fn read_profiles(
    reader: &mut Reader,
    field: &Field<'_, '_>,
    owner: Owner,
) -> Vec<ProfileTable> {
    let Some(table) = reader.table(field, "[targets.NAME.profiles.development] tables") else {
        return Vec::new();
    };
    let mut profiles = Vec::new();
    for (name, value) in table.entries.iter() {
        let span: Range<usize> = name.span();
        if let Err(e) = check_profile_name(name.get_ref()) {
            reader.push(
                Diagnostic::error(format!("invalid profile name in `{}`", table.path))
                    .with_label(e.problem)
                    .with_help(e.help),
                span.clone(),
            );
        }
        let profile_field = Field {
            path: table.child_path(name.get_ref()),
            key: "profiles",
            value,
        };
        let Some(mut t) = reader.table(&profile_field, "{ preset = \"development\" }") else {
            continue;
        };
        let mut layer = Layer::default();
        if owner == Owner::Target {
            read_endpoints(&mut t, reader, &mut layer, None);
        }
        read_connection_settings(&mut t, reader, &mut layer);
        read_call_settings(&mut t, reader, &mut layer);
        for key in ["service", "methods", "service_config", "profiles"] {
            if let Some(f) = t.get(key) {
                reader.push(
                    Diagnostic::error(format!("`{key}` cannot be set in a profile (in `{}`)", t.path))
                        .with_label("the same in every environment")
                        .with_help("move it to the target's table; a profile may set the address, identity, preset and any connection or call setting"),
                    f.span(),
                );
            }
        }
        if owner == Owner::Defaults {
            for key in ["address", "endpoints"] {
                if let Some(f) = t.get(key) {
                    reader.push(
                        Diagnostic::error(format!(
                            "`{key}` belongs to a target's profile, not to [defaults]"
                        ))
                        .with_help("move it under [targets.NAME.profiles.PROFILE]"),
                        f.span(),
                    );
                }
            }
        }
        t.finish(reader);
        profiles.push(ProfileTable {
            name: name.get_ref().to_string(),
            span,
            layer,
        });
    }
    profiles
}
