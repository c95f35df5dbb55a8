//! # ephemos-macros
//!
//! `#[ephemos::client(...)]` (also `ephemos::ephemos_client`): on a newtype over a tonic
//! client, reads `connections.toml` at compile time through ephemos-config, applies the
//! attribute's arguments on top, and bakes the resolved configuration into the binary as
//! constants, and adds the attribute's interceptors and identity propagation to the
//! generated `builder()`. A wrong value is a compile error spanned on its argument (or naming the
//! file's `line:column`). This crate only parses and emits: the rules live in
//! ephemos-config, where unit tests reach them.
//!
//! Generated code names only `::ephemos::...` paths.

mod arguments;
mod emit;
mod expand;
mod shape;

use proc_macro::TokenStream;

/// Bakes a client's configuration; see the `ephemos` crate's documentation.
#[proc_macro_attribute]
pub fn client(attribute: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attribute.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
