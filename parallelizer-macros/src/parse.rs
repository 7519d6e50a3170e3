//! Parse: the attribute arguments and the item models of every attribute.
//!
//! Nothing here decides whether an item is acceptable (that is
//! `validate`); parsing only fails on tokens that are not even the right
//! kind of thing (`name = 3` where a string is needed, an unknown key).

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, Item, ItemFn, LitStr, Path};

/// Which attribute is being expanded; decides the accepted keys and the
/// wording of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backend,
    MainRestricted,
    WorkerRestricted,
    Task,
    Main,
    Test,
}

impl Kind {
    /// How the attribute is written in messages.
    pub fn attr(self) -> &'static str {
        match self {
            Kind::Backend => "#[parallelizer(name = \"...\")]",
            Kind::MainRestricted => "#[main_restricted]",
            Kind::WorkerRestricted => "#[worker_restricted]",
            Kind::Task => "#[parallelizer::task]",
            Kind::Main => "#[parallelizer::main]",
            Kind::Test => "#[parallelizer::test]",
        }
    }

    fn keys(self) -> &'static str {
        match self {
            Kind::Backend => "`name = \"...\"` and `crate = \"...\"`",
            Kind::MainRestricted | Kind::WorkerRestricted => "`par = <expr>` and `crate = \"...\"`",
            Kind::Task => {
                "`crate = \"...\"` and the map calls the fn serves: `map`, `map_with`, \
                 `map_chunks`, `map_chunks_with`, `starmap`, `starmap_with`"
            }
            Kind::Main | Kind::Test => "`crate = \"...\"`",
        }
    }
}

/// The map calls a `#[parallelizer::task]` can serve, as its arguments
/// name them.
pub const MAP_FORMS: [&str; 6] = [
    "map",
    "map_with",
    "map_chunks",
    "map_chunks_with",
    "starmap",
    "starmap_with",
];

/// The arguments of any of the attributes; `validate` checks that the
/// required ones are there.
#[derive(Default)]
pub struct Args {
    /// `name = "..."` (backend).
    pub name: Option<LitStr>,
    /// `par = <expr>` (guards).
    pub par: Option<Expr>,
    /// `crate = "path"`: where the runtime is (default `::parallelizer`).
    pub krate: Option<Path>,
    /// The map calls a task serves (`#[task(map, map_chunks)]`); empty:
    /// inferred from the signature.
    pub forms: Vec<syn::Ident>,
}

impl Args {
    /// The path generated code uses to reach `__private`.
    pub fn krate(&self) -> Path {
        self.krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::parallelizer))
    }
}

/// Parses `key = value, ...` for attribute `kind`.
pub fn args(kind: Kind, tokens: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta.path.clone();
        let dup = || syn::Error::new_spanned(&key, "this key is given twice");
        if meta.path.is_ident("crate") {
            let lit: LitStr = meta.value()?.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected `crate = \"path::to::parallelizer\"`")
            })?;
            let path: Path = lit.parse().map_err(|_| {
                syn::Error::new_spanned(&lit, "`crate` must be a path, like \"::my_reexport\"")
            })?;
            args.krate.replace(path).map_or(Ok(()), |_| Err(dup()))
        } else if kind == Kind::Backend && meta.path.is_ident("name") {
            let value: Expr = meta.value()?.parse()?;
            match value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => args.name.replace(s).map_or(Ok(()), |_| Err(dup())),
                other => Err(syn::Error::new_spanned(
                    other,
                    "the mode name must be a string literal: `name = \"loopback\"`",
                )),
            }
        } else if matches!(kind, Kind::MainRestricted | Kind::WorkerRestricted)
            && meta.path.is_ident("par")
        {
            let expr: Expr = meta.value()?.parse()?;
            args.par.replace(expr).map_or(Ok(()), |_| Err(dup()))
        } else if let Some(form) = meta
            .path
            .get_ident()
            .filter(|i| kind == Kind::Task && MAP_FORMS.iter().any(|f| *i == f))
        {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                return Err(syn::Error::new_spanned(
                    &meta.path,
                    format!("`{form}` takes no value: write `#[parallelizer::task({form})]`"),
                ));
            }
            if args.forms.contains(form) {
                return Err(dup());
            }
            args.forms.push(form.clone());
            Ok(())
        } else {
            Err(syn::Error::new_spanned(
                &meta.path,
                format!(
                    "unknown argument of {}; it accepts {}",
                    kind.attr(),
                    kind.keys()
                ),
            ))
        }
    });
    parser.parse2(tokens)?;
    Ok(args)
}

/// Parses the item under a fn attribute. Methods and associated fns parse
/// as [`ItemFn`] too; anything else (a trait method without a body, a
/// struct) is an error at the item.
pub fn fn_item(kind: Kind, tokens: TokenStream) -> syn::Result<ItemFn> {
    syn::parse2::<ItemFn>(tokens.clone()).map_err(|_| {
        let span = match syn::parse2::<syn::TraitItemFn>(tokens.clone()) {
            Ok(f) => f.sig.span(),
            Err(_) => match syn::parse2::<Item>(tokens.clone()) {
                Ok(item) => item_keyword(&item),
                Err(_) => tokens.span(),
            },
        };
        syn::Error::new(span, format!("{} goes on a fn with a body", kind.attr()))
    })
}

/// The item under `#[parallelizer(...)]`: any item, so `validate` can say
/// precisely why it is not a plain struct.
pub fn backend_item(tokens: TokenStream) -> syn::Result<Item> {
    syn::parse2::<Item>(tokens)
}

/// The span of an item's keyword (`enum`, `fn`, ...), for "wrong kind of
/// item" errors.
pub fn item_keyword(item: &Item) -> Span {
    match item {
        Item::Enum(i) => i.enum_token.span,
        Item::Fn(i) => i.sig.fn_token.span,
        Item::Union(i) => i.union_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Const(i) => i.const_token.span,
        other => other.span(),
    }
}
