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

/// The map calls a task serves on a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Map,
    MapWith,
    MapChunks,
    MapChunksWith,
    Starmap,
    StarmapWith,
}

impl Form {
    fn named(name: &str) -> Option<Form> {
        Some(match name {
            "map" => Form::Map,
            "map_with" => Form::MapWith,
            "map_chunks" => Form::MapChunks,
            "map_chunks_with" => Form::MapChunksWith,
            "starmap" => Form::Starmap,
            "starmap_with" => Form::StarmapWith,
            _ => return None,
        })
    }

    /// The call's name, as written in the attribute and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Form::Map => "map",
            Form::MapWith => "map_with",
            Form::MapChunks => "map_chunks",
            Form::MapChunksWith => "map_chunks_with",
            Form::Starmap => "starmap",
            Form::StarmapWith => "starmap_with",
        }
    }

    /// The fn shape the call needs, for messages.
    fn shape(self) -> &'static str {
        match self {
            Form::Map => "`fn name(item: T) -> R`",
            Form::MapWith => "`fn name(item: T, extra: &E) -> R`",
            Form::MapChunks => "`fn name(items: Vec<T>) -> Vec<R>`",
            Form::MapChunksWith => "`fn name(items: Vec<T>, extra: &E) -> Vec<R>`",
            Form::Starmap => "`fn name(a: A, b: B, ..) -> R`",
            Form::StarmapWith => "`fn name(a: A, b: B, .., extra: &E) -> R`",
        }
    }

    /// Whether the call passes an extra argument by reference after the items.
    fn has_extra(self) -> bool {
        matches!(
            self,
            Form::MapWith | Form::MapChunksWith | Form::StarmapWith
        )
    }

    /// Whether the call passes exactly one item (or chunk) before the extra
    /// argument (`starmap` passes a tuple's fields).
    fn one_item(self) -> bool {
        !matches!(self, Form::Starmap | Form::StarmapWith)
    }
}

/// The two shapes of a task.
pub enum TaskShape {
    /// `fn(par: &dyn Parallelizer, args: A) -> R`, run by `run`.
    Region { args: Type },
    /// A fn the maps apply to items: its items' types, the type of its
    /// extra argument (`&E`, without the `&`), and the calls it serves.
    Items {
        items: Vec<Type>,
        extra: Option<Type>,
        forms: Vec<Form>,
    },
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
     (run with `par.run(name, args)`) or a fn the maps apply to items: \
     `fn name(item: T) -> R` (`map`), `fn name(item: T, extra: &E) -> R` (`map_with`), \
     `fn name(items: Vec<T>) -> Vec<R>` (`map_chunks`), `fn name(a: A, b: B) -> R` (`starmap`)";

/// The most fields a `starmap` tuple may have (`Apply` is implemented up to
/// this arity).
const MAX_FIELDS: usize = 6;

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
    let no_generics = HashSet::new();
    let region = typed
        .first()
        .is_some_and(|t| is_parallelizer_type(&t.ty, &no_generics));
    let shape = match typed.as_slice() {
        [] => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                format!("{attr}: a task takes its arguments; {TASK_FORMS} (use `()` for no args)"),
            ));
        }
        [par, args] if region => {
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
        [_] if region => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                format!(
                    "{attr}: a region task takes its arguments after the rank handle; \
                     {TASK_FORMS} (use `()` for no args)"
                ),
            ));
        }
        [_, _, third, ..] if region => {
            return err(
                third,
                format!(
                    "{attr}: too many parameters; pass several arguments as one tuple, \
                     `(a, b): (u32, String)`; {TASK_FORMS}"
                ),
            );
        }
        items => item_shape(items, &sig.output)?,
    };
    let shape = with_forms(shape, &args.forms)?;
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

/// The shape of a fn the maps apply to items: items by value, then perhaps
/// an extra argument by shared reference; the calls it serves, as its
/// signature shows them.
fn item_shape(params: &[&syn::PatType], output: &ReturnType) -> syn::Result<TaskShape> {
    let no_generics = HashSet::new();
    if let Some(p) = params
        .iter()
        .find(|p| is_parallelizer_type(&p.ty, &no_generics))
    {
        return err(
            &p.ty,
            format!(
                "the rank handle goes first, as in `fn name(par: &dyn Parallelizer, args: A)` \
                 (a region task); a fn the maps apply to items takes no handle; {TASK_FORMS}"
            ),
        );
    }
    let (last, front) = params.split_last().expect("at least one parameter");
    let extra = match &*last.ty {
        Type::Reference(r) if r.mutability.is_some() => {
            return err(
                &last.ty,
                "the extra argument is shared by every item: take it as `&E`, not `&mut E`",
            );
        }
        Type::Reference(r) if !front.is_empty() => Some((*r.elem).clone()),
        Type::Reference(_) => {
            return err(
                &last.ty,
                format!(
                    "a map passes each item by value: `fn name(item: T)`; a reference is only \
                     for the extra argument after the items, `fn name(item: T, extra: &E)`; {TASK_FORMS}"
                ),
            );
        }
        _ => None,
    };
    let owned = if extra.is_some() { front } else { params };
    if let Some(r) = owned.iter().find(|p| matches!(&*p.ty, Type::Reference(_))) {
        return err(
            &r.ty,
            "items are passed by value: only the last parameter, the extra argument of \
             `map_with`, `map_chunks_with` or `starmap_with`, may be a reference",
        );
    }
    if let Some(p) = owned.get(MAX_FIELDS) {
        return err(
            p,
            format!(
                "{}: `starmap` passes tuples of at most {MAX_FIELDS} fields; take a struct \
                 or a nested tuple instead",
                Kind::Task.attr()
            ),
        );
    }
    let chunks = owned.len() == 1
        && is_vec(&owned[0].ty)
        && matches!(output, ReturnType::Type(_, ty) if is_vec(ty));
    let forms = match (owned.len(), extra.is_some()) {
        (1, false) if chunks => vec![Form::Map, Form::MapChunks],
        (1, false) => vec![Form::Map],
        (1, true) if chunks => vec![Form::MapWith, Form::MapChunksWith],
        (1, true) => vec![Form::MapWith],
        (_, false) => vec![Form::Starmap],
        (_, true) => vec![Form::StarmapWith],
    };
    Ok(TaskShape::Items {
        items: owned.iter().map(|p| (*p.ty).clone()).collect(),
        extra,
        forms,
    })
}

/// The forms the attribute names, checked against the shape, instead of
/// the inferred ones.
fn with_forms(shape: TaskShape, named: &[Ident]) -> syn::Result<TaskShape> {
    if named.is_empty() {
        return Ok(shape);
    }
    let (items, extra) = match shape {
        TaskShape::Region { .. } => {
            return err(
                &named[0],
                format!(
                    "`{}` names a map call, but this is a region task (run with `par.run`); \
                     a fn the maps apply to items takes no rank handle",
                    named[0]
                ),
            );
        }
        TaskShape::Items { items, extra, .. } => (items, extra),
    };
    let mut forms = Vec::new();
    for ident in named {
        let form = Form::named(&ident.to_string()).expect("parse accepts only form names");
        if form.has_extra() != extra.is_some() || (form.one_item() && items.len() != 1) {
            return err(
                ident,
                format!(
                    "`{}` needs {}, which this fn is not",
                    form.name(),
                    form.shape()
                ),
            );
        }
        forms.push(form);
    }
    Ok(TaskShape::Items {
        items,
        extra,
        forms,
    })
}

/// Whether a type is written as `Vec<T>` (or a path ending in it).
fn is_vec(ty: &Type) -> bool {
    match ty {
        Type::Path(tp) if tp.qself.is_none() => tp.path.segments.last().is_some_and(|s| {
            s.ident == "Vec" && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
        }),
        Type::Paren(p) => is_vec(&p.elem),
        Type::Group(g) => is_vec(&g.elem),
        _ => false,
    }
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
