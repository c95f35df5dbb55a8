//! From the attribute and the struct to the generated code.

use std::path::PathBuf;

use ephemos_config::codegen::ToRust;
use ephemos_config::{ClientProblem, ClientRequest, SourceFile, resolve_client};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Fields, ItemStruct};

use crate::arguments::{Arguments, parse};

/// Where `connections.toml` is: `config = "..."`, else `EPHEMOS_CONFIG`, else
/// `connections.toml`; each relative to the crate's root, or failing that to the
/// directory of the file that uses the attribute.
fn config_path(arguments: &Arguments) -> PathBuf {
    let name = match (&arguments.config, std::env::var_os("EPHEMOS_CONFIG")) {
        (Some((path, _)), _) => PathBuf::from(path),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => PathBuf::from("connections.toml"),
    };
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let from_crate = manifest.join(&name);
    if from_crate.exists() {
        return from_crate;
    }
    let source = proc_macro::Span::call_site().local_file();
    match source.as_deref().and_then(std::path::Path::parent) {
        Some(dir) if dir.join(&name).exists() => dir.join(&name),
        _ => from_crate,
    }
}

/// A file's diagnostic in one message: `file:line:column: what (help: how)`.
fn one_line(diagnostic: &ephemos_config::Diagnostic) -> String {
    let place = diagnostic
        .span
        .as_ref()
        .map(|s| format!("{s}: "))
        .unwrap_or_default();
    let label = diagnostic
        .label
        .as_deref()
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    let help = diagnostic
        .help
        .as_deref()
        .map(|h| format!("\n  help: {h}"))
        .unwrap_or_default();
    format!("{place}{}{label}{help}", diagnostic.message)
}

fn error(span: Span, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, message)
}

fn combine(errors: Vec<syn::Error>) -> syn::Error {
    let mut iter = errors.into_iter();
    let mut first = iter
        .next()
        .unwrap_or_else(|| error(Span::call_site(), "invalid client"));
    for e in iter {
        first.combine(e);
    }
    first
}

pub(crate) fn expand(attribute: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: ItemStruct = syn::parse2(item).map_err(|e| {
        error(
            e.span(),
            "#[ephemos::client] goes on a newtype over a tonic client: `pub struct Payments(PaymentsClient<ephemos::Channel>);`",
        )
    })?;
    let inner = match &item.fields {
        Fields::Unnamed(fields) if fields.unnamed.len() == 1 => fields.unnamed[0].clone(),
        _ => {
            return Err(error(
                item.ident.span(),
                "#[ephemos::client] goes on a newtype over a tonic client: `pub struct Payments(PaymentsClient<ephemos::Channel>);`",
            ));
        }
    };
    let arguments = parse(attribute)?;
    let attribute_span = Span::call_site();
    let path = config_path(&arguments);
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => Some(SourceFile::new(path.display().to_string(), text)),
        Err(e) if arguments.target.is_some() || arguments.config.is_some() => {
            let span = arguments
                .config
                .as_ref()
                .or(arguments.target.as_ref())
                .map_or(attribute_span, |(_, s)| *s);
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            return Err(error(
                span,
                format!(
                    "cannot read `{name}` next to Cargo.toml or next to this file: {e}\n  \
                     help: set `config = \"path/to/connections.toml\"` (relative to the crate) or EPHEMOS_CONFIG"
                ),
            ));
        }
        Err(_) => None,
    };
    let name = item.ident.to_string();
    let request = ClientRequest {
        name: &name,
        file: file.clone(),
        target: arguments.target.as_ref().map(|(t, _)| t.as_str()),
        arguments: &arguments.settings,
    };
    let resolved = resolve_client(&request).map_err(|problems| {
        combine(
            problems
                .into_iter()
                .map(|problem| match problem {
                    ClientProblem::Argument { index, diagnostic } => {
                        let span = arguments
                            .setting_spans
                            .get(index)
                            .copied()
                            .unwrap_or(attribute_span);
                        let mut message = diagnostic
                            .label
                            .clone()
                            .unwrap_or_else(|| diagnostic.message.clone());
                        if diagnostic.label.is_some() {
                            message = format!("{}: {message}", diagnostic.message);
                        }
                        if let Some(help) = &diagnostic.help {
                            message = format!("{message}\n  help: {help}");
                        }
                        error(span, message)
                    }
                    ClientProblem::File(diagnostic) => error(attribute_span, one_line(&diagnostic)),
                    ClientProblem::UnknownTarget { message } => error(
                        arguments
                            .target
                            .as_ref()
                            .map_or(attribute_span, |(_, s)| *s),
                        message,
                    ),
                    ClientProblem::Attribute(message) => error(attribute_span, message),
                })
                .collect(),
        )
    })?;
    let config: syn::Expr = syn::parse_str(&resolved.config.to_rust()).map_err(|e| {
        error(
            attribute_span,
            format!("internal: generated configuration does not parse: {e}"),
        )
    })?;
    let json = resolved.config.service_config.to_json_compact();
    let target = resolved.config.name.to_string();
    let recv = resolved.config.connection.max_message_size.recv as usize;
    let track = file.map(|_| {
        let path = path.display().to_string();
        // Cargo rebuilds the crate when the file changes.
        quote! { const _: &[u8] = ::core::include_bytes!(#path); }
    });
    let ident = &item.ident;
    let vis = &item.vis;
    let attrs = &item.attrs;
    let inner_vis = &inner.vis;
    let inner_ty = &inner.ty;
    let generics = &item.generics;
    Ok(quote! {
        #(#attrs)*
        #vis struct #ident #generics (#inner_vis #inner_ty, ::ephemos::Channel);

        #track

        impl #ident {
            /// The target's name.
            pub const TARGET: &'static str = #target;
            /// The resolved configuration, validated at compile time.
            pub const CONFIG: ::ephemos::TargetConfig = #config;
            /// The gRPC service config, as JSON.
            pub const SERVICE_CONFIG_JSON: &'static str = #json;

            /// A channel builder with the baked configuration, to change it at run time
            /// (another address in tests, say) before connecting.
            pub fn builder() -> ::core::result::Result<::ephemos::ChannelBuilder, ::ephemos::BuildError> {
                ::ephemos::Channel::from_target(&Self::CONFIG)
            }

            /// The client over a channel built elsewhere (from [`Self::builder`]).
            pub fn from_channel(channel: ::ephemos::Channel) -> Self {
                // Only the decode limit: the channel enforces the send limit itself, before a
                // stream opens and with RESOURCE_EXHAUSTED; tonic's own encode limit would
                // fail inside the body and reach the caller as a stream reset.
                let client = <#inner_ty>::new(::core::clone::Clone::clone(&channel))
                    .max_decoding_message_size(#recv);
                Self(client, channel)
            }

            /// The client, without any I/O: the first call connects.
            pub fn connect_lazy() -> ::core::result::Result<Self, ::ephemos::BuildError> {
                ::core::result::Result::Ok(Self::from_channel(Self::builder()?.connect_lazy()?))
            }

            /// The client, once its channel is READY.
            pub async fn connect() -> ::core::result::Result<Self, ::ephemos::ClientError> {
                let channel = Self::builder()?.connect_lazy()?;
                channel.connect().await?;
                ::core::result::Result::Ok(Self::from_channel(channel))
            }

            /// The channel: state, `wait_for_state_change`, server IDs.
            pub fn channel(&self) -> &::ephemos::Channel {
                &self.1
            }
        }

        impl ::core::clone::Clone for #ident {
            fn clone(&self) -> Self {
                Self(::core::clone::Clone::clone(&self.0), ::core::clone::Clone::clone(&self.1))
            }
        }

        impl ::core::ops::Deref for #ident {
            type Target = #inner_ty;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl ::core::ops::DerefMut for #ident {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.0
            }
        }
    })
}
