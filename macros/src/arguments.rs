//! The attribute's arguments: `target`, `config`, settings as `key = literal`, and the
//! runtime behaviour that is code rather than a setting: `interceptor = path::to::fn`
//! (repeatable, in order) and `propagate_identity = true`.

use ephemos_config::{ArgumentValue, ClientArgument};
use proc_macro2::Span;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ExprUnary, Lit, MetaNameValue, Token, UnOp};

/// The parsed arguments and the span of each, to place errors.
pub(crate) struct Arguments {
    pub(crate) target: Option<(String, Span)>,
    pub(crate) config: Option<(String, Span)>,
    pub(crate) settings: Vec<ClientArgument>,
    pub(crate) setting_spans: Vec<Span>,
    /// Functions to add with `ChannelBuilder::interceptor`, in order.
    pub(crate) interceptors: Vec<syn::Path>,
    /// `propagate_identity = true`.
    pub(crate) propagate_identity: bool,
}

fn literal(expr: &Expr) -> Option<ArgumentValue> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(s) => Some(ArgumentValue::Str(s.value())),
            Lit::Int(i) => i.base10_parse().ok().map(ArgumentValue::Int),
            Lit::Float(f) => f.base10_parse().ok().map(ArgumentValue::Float),
            Lit::Bool(b) => Some(ArgumentValue::Bool(b.value)),
            _ => None,
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match literal(expr)? {
            ArgumentValue::Int(i) => Some(ArgumentValue::Int(-i)),
            ArgumentValue::Float(f) => Some(ArgumentValue::Float(-f)),
            _ => None,
        },
        _ => None,
    }
}

/// Parses `key = literal, ...`; every malformed argument is an error at once.
pub(crate) fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Arguments> {
    let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut arguments = Arguments {
        target: None,
        config: None,
        settings: Vec::new(),
        setting_spans: Vec::new(),
        interceptors: Vec::new(),
        propagate_identity: false,
    };
    let mut errors: Option<syn::Error> = None;
    let mut fail = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    for pair in pairs {
        let Some(key) = pair.path.get_ident().map(ToString::to_string) else {
            fail(syn::Error::new_spanned(
                &pair.path,
                "expected a setting name, such as `target` or `connect_timeout`",
            ));
            continue;
        };
        let span = syn::spanned::Spanned::span(&pair);
        if key == "interceptor" {
            match &pair.value {
                Expr::Path(path) if path.qself.is_none() => {
                    arguments.interceptors.push(path.path.clone());
                }
                other => fail(syn::Error::new_spanned(
                    other,
                    "`interceptor` takes the path of a function \
                     `fn(&str, &mut tonic::metadata::MetadataMap) -> Result<(), tonic::Status>`, \
                     such as `interceptor = crate::auth::add_token`",
                )),
            }
            continue;
        }
        let Some(value) = literal(&pair.value) else {
            fail(syn::Error::new_spanned(
                &pair.value,
                format!("`{key}` takes a literal: a string, a number or true/false"),
            ));
            continue;
        };
        match (key.as_str(), value) {
            ("target", ArgumentValue::Str(name)) => arguments.target = Some((name, span)),
            ("config", ArgumentValue::Str(path)) => arguments.config = Some((path, span)),
            ("target" | "config", _) => fail(syn::Error::new_spanned(
                &pair.value,
                format!("`{key}` takes a string"),
            )),
            ("propagate_identity", ArgumentValue::Bool(on)) => arguments.propagate_identity = on,
            ("propagate_identity", _) => fail(syn::Error::new_spanned(
                &pair.value,
                "`propagate_identity` takes true or false",
            )),
            (_, value) => {
                arguments.settings.push(ClientArgument { key, value });
                arguments.setting_spans.push(span);
            }
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(arguments),
    }
}
