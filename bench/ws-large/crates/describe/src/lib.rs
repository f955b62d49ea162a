//! `#[derive(Describe)]`: a `describe()` method listing a struct's field names.
use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields};

#[proc_macro_derive(Describe)]
pub fn derive_describe(input: TokenStream) -> TokenStream {
    let ast = parse_macro_input!(input as DeriveInput);
    let name = &ast.ident;
    let fields: Vec<String> = match &ast.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(n) => n.named.iter().map(|f| f.ident.as_ref().unwrap().to_string()).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let text = format!("{}{{{}}}", name, fields.join(", "));
    let span = proc_macro2::Span::call_site();
    let lit = syn::LitStr::new(&text, span);
    quote! {
        impl #name {
            pub fn describe() -> &'static str { #lit }
        }
    }
    .into()
}
