//! Validate: turns a parsed item into the model its expansion needs, or an
//! error pointing at the token that makes it unusable.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericParam, Ident, Item, ItemFn, ItemStruct, LitStr, Pat, Path, ReturnType,
    Type, TypeParamBound, WherePredicate,
};

use crate::parse::{Args, Kind, item_keyword};

fn err<T>(tokens: impl quote::ToTokens, msg: impl std::fmt::Display) -> syn::Result<T> {
    Err(syn::Error::new_spanned(tokens, msg))
}

/// A struct registered as a backend.
pub struct Backend {
    pub item: ItemStruct,
    pub name: LitStr,
    pub krate: Path,
}

/// `#[parallelizer(name = "...")]`: a non-generic struct and a usable name.
pub fn backend(args: Args, item: Item) -> syn::Result<Backend> {
    let item = match item {
        Item::Struct(s) => s,
        other => {
            let what = match &other {
                Item::Enum(_) => "an enum",
                Item::Fn(_) => "a fn",
                Item::Union(_) => "a union",
                Item::Trait(_) => "a trait",
                Item::Impl(_) => "an impl block",
                _ => "this item",
            };
            return Err(syn::Error::new(
                item_keyword(&other),
                format!(
                    "#[parallelizer(name = \"...\")] registers a backend struct, not {what}; \
                     put it on the struct that implements `Parallelizer` and `FromConfig`"
                ),
            ));
        }
    };
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return err(
            &item.generics,
            "a registered backend cannot be generic: the registry builds it from a \
             `Config` alone; register a concrete type (e.g. a type alias's target struct)",
        );
    }
    let Some(name) = args.name.clone() else {
        return Err(syn::Error::new(
            Span::call_site(),
            "missing the mode name: #[parallelizer(name = \"mymode\")]",
        ));
    };
    let value = name.value();
    if value.is_empty() || value.contains(':') || value.chars().any(char::is_whitespace) {
        return err(
            &name,
            "a mode name must be non-empty, without `:` or spaces (specs are `MODE[:NPROCS]`)",
        );
    }
    Ok(Backend {
        item,
        name,
        krate: args.krate(),
    })
}

/// Where a guard reads the rank from.
pub enum Rank {
    /// A parameter of the fn.
    Param(Ident),
    /// `par = expr`.
    Expr(Expr),
    /// `current()`.
    Current,
}

/// A fn under `#[main_restricted]` / `#[worker_restricted]`.
pub struct Guard {
    pub func: ItemFn,
    pub main: bool,
    pub rank: Rank,
    pub krate: Path,
}

/// Removes `#[par]` markers from the parameters; returns the marked ones.
pub fn strip_par_markers(func: &mut ItemFn) -> Vec<(Span, Option<Ident>)> {
    let mut marked = Vec::new();
    for input in func.sig.inputs.iter_mut() {
        let (attrs, ident) = match input {
            FnArg::Receiver(r) => (&mut r.attrs, Some(Ident::new("self", r.self_token.span))),
            FnArg::Typed(t) => {
                let ident = match &*t.pat {
                    Pat::Ident(p) if p.subpat.is_none() => Some(p.ident.clone()),
                    _ => None,
                };
                (&mut t.attrs, ident)
            }
        };
        let before = attrs.len();
        let mut span = None;
        attrs.retain(|a| {
            let is_par = a.path().is_ident("par");
            if is_par {
                span = Some(a.span());
            }
            !is_par
        });
        if attrs.len() != before {
            marked.push((span.unwrap_or_else(Span::call_site), ident));
        }
    }
    marked
}

/// Type parameters bounded by `Parallelizer` (inline or in the where clause).
fn parallelizer_generics(func: &ItemFn) -> HashSet<Ident> {
    let mut set = HashSet::new();
    fn bounded<'a>(mut bounds: impl Iterator<Item = &'a TypeParamBound>) -> bool {
        bounds.any(|b| matches!(b, TypeParamBound::Trait(t) if names_parallelizer(&t.path)))
    }
    for param in &func.sig.generics.params {
        if let GenericParam::Type(t) = param {
            if bounded(t.bounds.iter()) {
                set.insert(t.ident.clone());
            }
        }
    }
    if let Some(wc) = &func.sig.generics.where_clause {
        for pred in &wc.predicates {
            if let WherePredicate::Type(pt) = pred {
                if let Type::Path(tp) = &pt.bounded_ty {
                    if let Some(id) = tp.path.get_ident() {
                        if bounded(pt.bounds.iter()) {
                            set.insert(id.clone());
                        }
                    }
                }
            }
        }
    }
    set
}

fn names_parallelizer(path: &Path) -> bool {
    path.segments
        .last()
        .is_some_and(|s| s.ident == "Parallelizer" || s.ident == "AsParallelizer")
}

/// The rule of section 3.2: after any `&`/`&mut`, the type is `dyn
/// Parallelizer`, `impl Parallelizer`, a type parameter bounded by
/// `Parallelizer`, or `Arc`/`Rc`/`Box` of one of these.
pub fn is_parallelizer_type(ty: &Type, generics: &HashSet<Ident>) -> bool {
    match ty {
        Type::Reference(r) => is_parallelizer_type(&r.elem, generics),
        Type::Paren(p) => is_parallelizer_type(&p.elem, generics),
        Type::Group(g) => is_parallelizer_type(&g.elem, generics),
        Type::TraitObject(t) => t
            .bounds
            .iter()
            .any(|b| matches!(b, TypeParamBound::Trait(t) if names_parallelizer(&t.path))),
        Type::ImplTrait(t) => t
            .bounds
            .iter()
            .any(|b| matches!(b, TypeParamBound::Trait(t) if names_parallelizer(&t.path))),
        Type::Path(tp) if tp.qself.is_none() => {
            if let Some(id) = tp.path.get_ident() {
                return generics.contains(id);
            }
            let Some(last) = tp.path.segments.last() else {
                return false;
            };
            if !["Arc", "Rc", "Box"].iter().any(|n| last.ident == n) {
                return false;
            }
            match &last.arguments {
                syn::PathArguments::AngleBracketed(a) => a.args.iter().any(
                    |g| matches!(g, syn::GenericArgument::Type(t) if is_parallelizer_type(t, generics)),
                ),
                _ => false,
            }
        }
        _ => false,
    }
}

fn reject_async_const(func: &ItemFn, kind: Kind, why: &str) -> syn::Result<()> {
    if let Some(a) = &func.sig.asyncness {
        return err(
            a,
            format!("{} cannot go on an `async fn`: {why}", kind.attr()),
        );
    }
    if let Some(c) = &func.sig.constness {
        return err(
            c,
            format!("{} cannot go on a `const fn`: {why}", kind.attr()),
        );
    }
    Ok(())
}

/// `#[main_restricted]` / `#[worker_restricted]`.
pub fn guard(kind: Kind, args: Args, mut func: ItemFn) -> syn::Result<Guard> {
    reject_async_const(
        &func,
        kind,
        "the guard checks the rank and runs the body in a closure",
    )?;
    if let Some(v) = &func.sig.variadic {
        return err(v, format!("{} cannot go on a variadic fn", kind.attr()));
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if matches!(**ty, Type::Never(_)) {
            return err(
                ty,
                format!(
                    "{} changes the return type to `Restricted<T>`, which cannot hold `!`",
                    kind.attr()
                ),
            );
        }
    }
    let marked = strip_par_markers(&mut func);
    if marked.len() > 1 {
        return Err(syn::Error::new(
            marked[1].0,
            "only one parameter can be marked `#[par]`",
        ));
    }
    let rank = if let Some(expr) = args.par.clone() {
        if let Some((span, _)) = marked.first() {
            return Err(syn::Error::new(
                *span,
                "give the rank either with `par = ...` or with `#[par]`, not both",
            ));
        }
        Rank::Expr(expr)
    } else if let Some((span, ident)) = marked.into_iter().next() {
        match ident {
            Some(ident) => Rank::Param(ident),
            None => {
                return Err(syn::Error::new(
                    span,
                    "the `#[par]` parameter must be a plain name (`par: &P`), not a pattern",
                ));
            }
        }
    } else {
        let generics = parallelizer_generics(&func);
        let found = func.sig.inputs.iter().find_map(|input| match input {
            FnArg::Typed(t) if is_parallelizer_type(&t.ty, &generics) => Some(t),
            _ => None,
        });
        match found {
            None => Rank::Current,
            Some(t) => match &*t.pat {
                Pat::Ident(p) if p.subpat.is_none() => Rank::Param(p.ident.clone()),
                other => {
                    return err(
                        other,
                        format!(
                            "{} reads the rank from this parallelizer parameter, so it needs \
                             a name: write `par: ...` instead of a pattern",
                            kind.attr()
                        ),
                    );
                }
            },
        }
    };
    Ok(Guard {
        func,
        main: kind == Kind::MainRestricted,
        rank,
        krate: args.krate(),
    })
}

/// The two shapes of a task.
pub enum TaskShape {
    /// `fn(par: &dyn Parallelizer, args: A) -> R`, run by `run`.
    Region { args: Type },
    /// `fn(item: T) -> R`, run by a pool-style `map`.
    Map { item: Type },
}

/// A fn under `#[parallelizer::task]`.
pub struct Task {
    pub func: ItemFn,
    pub shape: TaskShape,
    /// The return type, if it is (syntactically) a `Result`.
    pub result: Option<Type>,
    pub krate: Path,
}

const TASK_FORMS: &str = "expected `fn name(par: &dyn Parallelizer, args: A) -> R` \
     (run with `par.run(name, args)`) or `fn name(item: T) -> R` (used by `par.map(name, data)`)";

/// `#[parallelizer::task]`: a plain, non-generic, safe Rust fn of one of
/// the two shapes.
pub fn task(args: Args, func: ItemFn) -> syn::Result<Task> {
    let attr = Kind::Task.attr();
    let sig = &func.sig;
    if let Some(a) = &sig.asyncness {
        return err(
            a,
            format!(
                "{attr} cannot go on an `async fn`: workers call tasks synchronously; {TASK_FORMS}"
            ),
        );
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        return err(
            u,
            format!(
                "{attr} cannot go on an `unsafe fn`: a worker calls it with no caller to uphold its contract"
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        return err(
            abi,
            format!("{attr} needs a plain Rust fn, not an `extern` fn; {TASK_FORMS}"),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return err(
            &sig.generics,
            format!(
                "{attr} cannot go on a generic fn: a worker finds a task by one name, so it \
                 must have one concrete signature; register a non-generic wrapper instead"
            ),
        );
    }
    if let Some(v) = &sig.variadic {
        return err(v, format!("{attr}: {TASK_FORMS}"));
    }
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return err(
            r,
            format!(
                "{attr} needs a free fn at module level, not a method: a worker has no `self` \
                 to call it on; {TASK_FORMS}"
            ),
        );
    }
    if let Some(self_ty) = find_self_type(quote::ToTokens::to_token_stream(sig)) {
        return Err(syn::Error::new(
            self_ty,
            format!(
                "{attr} needs a free fn at module level, but `Self` shows this fn is in an impl \
                 or trait; move it out of the impl; {TASK_FORMS}"
            ),
        ));
    }
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    for t in &typed {
        if let Type::ImplTrait(i) = &*t.ty {
            return err(
                i,
                format!(
                    "{attr} cannot take `impl Trait` arguments (they make the fn generic); {TASK_FORMS}"
                ),
            );
        }
    }
    let shape = match typed.as_slice() {
        [item] => TaskShape::Map {
            item: (*item.ty).clone(),
        },
        [par, args] => {
            if !is_dyn_parallelizer_ref(&par.ty) {
                return err(
                    &par.ty,
                    format!(
                        "the first parameter of a two-parameter task must be `&dyn Parallelizer`, \
                         the rank handle every rank gets; {TASK_FORMS}"
                    ),
                );
            }
            TaskShape::Region {
                args: (*args.ty).clone(),
            }
        }
        [] => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                format!("{attr}: a task takes its arguments; {TASK_FORMS} (use `()` for no args)"),
            ));
        }
        [_, _, third, ..] => {
            return err(
                third,
                format!(
                    "{attr}: too many parameters; pass several arguments as one tuple, \
                     `(a, b): (u32, String)`; {TASK_FORMS}"
                ),
            );
        }
    };
    let result = match &sig.output {
        ReturnType::Type(_, ty) if is_result(ty) => Some((**ty).clone()),
        _ => None,
    };
    Ok(Task {
        func,
        shape,
        result,
        krate: args.krate(),
    })
}

/// The span of a `Self` in a signature, if any.
fn find_self_type(tokens: proc_macro2::TokenStream) -> Option<Span> {
    tokens.into_iter().find_map(|tt| match tt {
        proc_macro2::TokenTree::Ident(i) if i == "Self" => Some(i.span()),
        proc_macro2::TokenTree::Group(g) => find_self_type(g.stream()),
        _ => None,
    })
}

fn is_dyn_parallelizer_ref(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            Type::TraitObject(t) => matches!(
                t.bounds.first(),
                Some(TypeParamBound::Trait(b)) if b.path.segments.last().is_some_and(|s| s.ident == "Parallelizer")
            ),
            Type::Paren(p) => is_dyn_parallelizer_ref(&Type::Reference(syn::TypeReference {
                elem: p.elem.clone(),
                ..r.clone()
            })),
            _ => false,
        },
        _ => false,
    }
}

/// Whether a return type is written as a `Result` (`Result<T, E>`,
/// `io::Result<T>`, `anyhow::Result<T>`).
pub fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(tp) if tp.qself.is_none() => tp.path.segments.last().is_some_and(|s| {
            s.ident == "Result" && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
        }),
        Type::Paren(p) => is_result(&p.elem),
        Type::Group(g) => is_result(&g.elem),
        _ => false,
    }
}

/// A fn under `#[parallelizer::main]` or `#[parallelizer::test]`.
pub struct Entry {
    pub func: ItemFn,
    pub test: bool,
    pub krate: Path,
}

/// `#[parallelizer::main]` / `#[parallelizer::test]`: a synchronous fn
/// without parameters or generics; `main` must be called `main`, a test
/// must not carry its own `#[test]`.
pub fn entry(kind: Kind, args: Args, func: ItemFn) -> syn::Result<Entry> {
    let attr = kind.attr();
    let test = kind == Kind::Test;
    let why = if test {
        "the test harness calls a test synchronously (use a runtime inside the test)"
    } else {
        "`main` is called synchronously (start an async runtime inside `main` instead)"
    };
    if let Some(a) = &func.sig.asyncness {
        return err(a, format!("{attr} cannot go on an `async fn`: {why}"));
    }
    if !func.sig.generics.params.is_empty() || func.sig.generics.where_clause.is_some() {
        return err(
            &func.sig.generics,
            format!("{attr} cannot go on a generic fn"),
        );
    }
    if !func.sig.inputs.is_empty() {
        return err(
            &func.sig.inputs,
            if test {
                format!("{attr}: a test takes no parameters")
            } else {
                format!("{attr}: `main` takes no parameters; read them with `std::env::args()`")
            },
        );
    }
    if !test && func.sig.ident != "main" {
        return err(
            &func.sig.ident,
            format!(
                "{attr} goes on `fn main`, the entry point a worker process re-enters; \
                 elsewhere call `parallelizer::worker_entry()` yourself"
            ),
        );
    }
    if test {
        if let Some(a) = func.attrs.iter().find(|a| a.path().is_ident("test")) {
            return err(
                a,
                format!(
                    "remove this `#[test]`: {attr} adds it (a second one would run the test twice)"
                ),
            );
        }
    }
    Ok(Entry {
        func,
        test,
        krate: args.krate(),
    })
}
