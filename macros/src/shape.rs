//! The struct the attribute goes on, as the user wrote it: a newtype over a tonic
//! client, optionally with a second field that keeps the `ephemos::Channel`. Nothing is
//! added to it; the checks here only say, spanned, what does not fit.

use proc_macro2::Span;
use syn::visit_mut::VisitMut;
use syn::{
    Fields, GenericArgument, GenericParam, ItemStruct, Meta, Path, Token, Type, TypePath,
    punctuated::Punctuated,
};

const SHAPE: &str = "#[ephemos::client] goes on a newtype over a tonic client: \
                     `pub struct Payments(PaymentsClient<ephemos::Channel>);` \
                     (a second field, `ephemos::Channel`, keeps the channel for `channel()`)";

/// What the generated code needs to know of the struct.
pub(crate) struct Shape {
    /// The tonic client's type, with each type and const parameter replaced by its
    /// default: the type the constructors build.
    pub(crate) client: Type,
    /// The tonic client's type as written (for `Deref`).
    pub(crate) client_as_written: Type,
    /// Whether the struct keeps the channel in a second field.
    pub(crate) keeps_channel: bool,
    /// `Self` for the constructors: lifetimes kept, other parameters at their defaults.
    pub(crate) constructor_generics: syn::Generics,
    pub(crate) constructor_args: Vec<GenericArgument>,
}

fn error(span: Span, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, message)
}

fn is_channel(ty: &Type) -> bool {
    matches!(ty, Type::Path(TypePath { qself: None, path }) if path.segments.last().is_some_and(|s| s.ident == "Channel" && s.arguments.is_none()))
}

/// Derives the attribute implements itself.
const GENERATED_TRAITS: [&str; 2] = ["Deref", "DerefMut"];

/// Replaces type parameters by their defaults.
struct Defaults(Vec<(syn::Ident, Type)>);

impl VisitMut for Defaults {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(TypePath { qself: None, path }) = ty
            && let Some(ident) = path.get_ident()
            && let Some((_, default)) = self.0.iter().find(|(p, _)| p == ident)
        {
            *ty = default.clone();
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// Checks the struct; every problem at once.
pub(crate) fn check(item: &ItemStruct) -> syn::Result<Shape> {
    let mut errors: Vec<syn::Error> = Vec::new();
    let fields = match &item.fields {
        Fields::Unnamed(fields) if (1..=2).contains(&fields.unnamed.len()) => {
            Some(fields.unnamed.iter().collect::<Vec<_>>())
        }
        _ => {
            errors.push(error(item.ident.span(), SHAPE));
            None
        }
    };
    if let Some(fields) = &fields
        && let Some(second) = fields.get(1)
        && !is_channel(&second.ty)
    {
        errors.push(error(
            syn::spanned::Spanned::span(&second.ty),
            "the second field keeps the client's channel: its type is `ephemos::Channel`",
        ));
    }
    for attribute in &item.attrs {
        if !attribute.path().is_ident("derive") {
            continue;
        }
        let Meta::List(list) = &attribute.meta else {
            continue;
        };
        let Ok(paths) = list.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated)
        else {
            continue;
        };
        for path in paths {
            if let Some(last) = path.segments.last()
                && GENERATED_TRAITS.iter().any(|t| last.ident == t)
            {
                errors.push(error(
                    syn::spanned::Spanned::span(&path),
                    format!(
                        "remove `{}` from the derive: #[ephemos::client] implements Deref and DerefMut to the tonic client itself",
                        last.ident
                    ),
                ));
            }
        }
    }
    let mut defaults = Defaults(Vec::new());
    let mut constructor_generics = syn::Generics::default();
    let mut constructor_args = Vec::new();
    for param in &item.generics.params {
        match param {
            GenericParam::Lifetime(l) => {
                constructor_generics.params.push(GenericParam::Lifetime(l.clone()));
                constructor_args.push(GenericArgument::Lifetime(l.lifetime.clone()));
            }
            GenericParam::Type(t) => match &t.default {
                Some(default) => {
                    defaults.0.push((t.ident.clone(), default.clone()));
                    constructor_args.push(GenericArgument::Type(default.clone()));
                }
                None => errors.push(error(
                    t.ident.span(),
                    format!(
                        "give `{}` a default (`{} = ephemos::Channel`, say): the generated constructors build the client with the defaults",
                        t.ident, t.ident
                    ),
                )),
            },
            GenericParam::Const(c) => match &c.default {
                Some(default) => constructor_args.push(GenericArgument::Const(default.clone())),
                None => errors.push(error(
                    c.ident.span(),
                    format!(
                        "give `{}` a default: the generated constructors build the client with the defaults",
                        c.ident
                    ),
                )),
            },
        }
    }
    if let Some(all) = crate::expand::combine(errors) {
        return Err(all);
    }
    let fields = fields.unwrap_or_default();
    let Some(client_field) = fields.first() else {
        return Err(error(item.ident.span(), SHAPE));
    };
    let mut client = client_field.ty.clone();
    defaults.visit_type_mut(&mut client);
    Ok(Shape {
        client,
        client_as_written: client_field.ty.clone(),
        keeps_channel: fields.len() == 2,
        constructor_generics,
        constructor_args,
    })
}
