//! The method a call names, found in the target's protos (compiled here with protox,
//! as the build script compiled them), and its request messages read from JSON.

use std::path::{Path, PathBuf};

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

/// Compiles `protos` with `includes` (each proto's own folder when none are given).
pub(crate) fn compile(protos: &[PathBuf], includes: &[PathBuf]) -> Result<DescriptorPool, String> {
    if protos.is_empty() {
        return Err(
            "name the target's protos: --proto FILE (repeat it for more), with -I DIR for their imports"
                .to_owned(),
        );
    }
    let includes: Vec<PathBuf> = if includes.is_empty() {
        let mut dirs: Vec<PathBuf> = protos
            .iter()
            .map(|p| {
                p.parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            })
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p
                }
            })
            .collect();
        dirs.dedup();
        dirs
    } else {
        includes.to_vec()
    };
    let mut compiler = protox::Compiler::new(&includes).map_err(|e| format!("{e}"))?;
    compiler.include_imports(true);
    compiler
        .open_files(protos)
        .map_err(|e| format!("cannot compile the protos: {e}"))?;
    Ok(compiler.descriptor_pool())
}

/// Finds METHOD: `pkg.Service/Method`, `pkg.Service.Method`, or `Method` of the
/// target's `service` (or of the one service that has it).
pub(crate) fn find_method(
    pool: &DescriptorPool,
    method: &str,
    target_service: Option<&str>,
) -> Result<MethodDescriptor, String> {
    let all = || {
        pool.services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .map(|m| format!("{}/{}", m.parent_service().full_name(), m.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (service, name) = match method.rsplit_once(['/', '.']) {
        Some((service, name)) => (Some(service.trim_start_matches('/')), name),
        None => (None, method),
    };
    let found = match service.or(target_service) {
        Some(service) => pool
            .get_service_by_name(service)
            .ok_or_else(|| {
                format!(
                    "the protos have no service `{service}`; the methods are: {}",
                    all()
                )
            })?
            .methods()
            .find(|m| m.name() == name),
        None => {
            let mut matching = pool
                .services()
                .flat_map(|s| s.methods().collect::<Vec<_>>())
                .filter(|m| m.name() == name);
            let first = matching.next();
            if matching.next().is_some() {
                return Err(format!(
                    "more than one service has `{name}`: write SERVICE/{name}; the methods are: {}",
                    all()
                ));
            }
            first
        }
    };
    found.ok_or_else(|| {
        format!(
            "no method `{method}` in the protos; the methods are: {}",
            all()
        )
    })
}

/// The request messages of `data` (JSON, or `@FILE` to read it): one object, or for a
/// client-streaming method an array of them (an object is a stream of one).
pub(crate) fn requests(
    method: &MethodDescriptor,
    data: &str,
) -> Result<Vec<DynamicMessage>, String> {
    let text = match data.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
        None => data.to_owned(),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("--data is not JSON: {e}"))?;
    let input = method.input();
    let items = match value {
        serde_json::Value::Array(items) if method.is_client_streaming() => items,
        serde_json::Value::Array(_) => {
            return Err(format!(
                "{} takes one {} message: give --data a JSON object (arrays are for client-streaming methods)",
                method.full_name(),
                input.full_name()
            ));
        }
        other => vec![other],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            DynamicMessage::deserialize(input.clone(), item).map_err(|e| {
                format!(
                    "--data{} is not a {}: {e}",
                    if method.is_client_streaming() {
                        format!("[{i}]")
                    } else {
                        String::new()
                    },
                    input.full_name()
                )
            })
        })
        .collect()
}
