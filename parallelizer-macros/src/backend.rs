//! `#[parallelizer(name = "...")]`: link-time registration of a backend.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemStruct, LitStr, Path};

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let original = item.clone();
    match try_expand(args, item) {
        Ok(ts) => ts,
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#original #err)
        }
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let item: ItemStruct = syn::parse2(item)?;
    let mut name: Option<LitStr> = None;
    let mut krate: Option<Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("crate") {
            let lit: LitStr = meta.value()?.parse()?;
            krate = Some(lit.parse()?);
            Ok(())
        } else {
            Err(meta.error("expected `name = \"...\"` or `crate = \"...\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    let name =
        name.ok_or_else(|| syn::Error::new_spanned(&item.ident, "missing `name = \"...\"`"))?;
    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::parallelizer));
    let ident = &item.ident;
    Ok(quote! {
        #item
        #krate::__private::inventory::submit! {
            #krate::__private::BackendEntry {
                name: #name,
                type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                build: #krate::__private::build_backend::<#ident>,
            }
        }
    })
}
