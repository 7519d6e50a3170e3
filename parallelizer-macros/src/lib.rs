//! Procedural macros of [`parallelizer`](https://docs.rs/parallelizer); use
//! them through the facade (`parallelizer::task`, `#[parallelizer::main]`,
//! ...), which re-exports them.
//!
//! The crate is organised like thiserror-impl and tracing-attributes:
//! `parse` reads the attribute arguments and the item, `validate`
//! checks the item and builds the model its expansion needs, `expand`
//! writes the code. On any error the original item is emitted unchanged
//! next to a `compile_error!` pointing at the offending tokens, so IDEs
//! keep working; nothing panics.
//!
//! Generated code names runtime items only through `::parallelizer::__private`,
//! or `<path>::__private` with `crate = "path"`.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{ToTokens, quote};

mod expand;
mod parse;
mod validate;

use parse::Kind;

/// Runs parse → validate → expand for one attribute; the public entry of
/// the expansion snapshot tests too.
fn expand_attr(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let result = parse::args(kind, args).and_then(|args| match kind {
        Kind::Backend => parse::backend_item(item.clone())
            .and_then(|i| validate::backend(args, i))
            .map(expand::backend),
        Kind::MainRestricted | Kind::WorkerRestricted => parse::fn_item(kind, item.clone())
            .and_then(|f| validate::guard(kind, args, f))
            .map(expand::guard),
        Kind::Task => parse::fn_item(kind, item.clone())
            .and_then(|f| validate::task(args, f))
            .map(expand::task),
        Kind::Main | Kind::Test => parse::fn_item(kind, item.clone())
            .and_then(|f| validate::entry(kind, args, f))
            .map(expand::entry),
    });
    match result {
        Ok(tokens) => tokens,
        Err(e) => {
            let original = fallback(kind, item);
            let error = e.to_compile_error();
            quote!(#original #error)
        }
    }
}

/// The original item, minus the `#[par]` markers a guard would have
/// removed (they are not attributes rustc knows).
fn fallback(kind: Kind, item: TokenStream2) -> TokenStream2 {
    if matches!(kind, Kind::MainRestricted | Kind::WorkerRestricted) {
        if let Ok(mut f) = syn::parse2::<syn::ItemFn>(item.clone()) {
            validate::strip_par_markers(&mut f);
            return f.into_token_stream();
        }
    }
    item
}

/// Registers a backend struct under a mode name, at link time, so that
/// `parallelizer::from_config("NAME")`, `lookup("NAME:4")` and `modes()`
/// find it exactly like the built-in backends (which use this attribute
/// too).
///
/// The struct must implement `Parallelizer` and `FromConfig` and must not be
/// generic. A backend defined in another crate is found only if the binary
/// names that crate once (`use my_backends as _;`). Two structs registered under one name are an error at first use
/// that names both types. Arguments: `name = "mode"` (required; no `:` or
/// spaces) and `crate = "path"` (where `parallelizer` is, for re-exporters).
///
/// ```
/// use parallelizer::backend::{Core, FromConfig, Msg, Region};
/// use parallelizer::{parallelizer, Config, Parallelizer, Result};
///
/// /// A one-rank backend: every collective is the identity.
/// #[parallelizer(name = "solo")]
/// struct Solo { core: Core }
///
/// impl FromConfig for Solo {
///     fn from_config(config: &Config) -> Result<Solo> {
///         Ok(Solo { core: Core::new(config.clone()) })
///     }
/// }
/// impl Parallelizer for Solo {
///     fn core(&self) -> &Core { &self.core }
///     fn id(&self) -> usize { 0 }
///     fn nprocs(&self) -> usize { 1 }
///     fn in_region(&self) -> bool { true }
///     fn run_region(&self, region: Region) -> Result<Msg> {
///         region.run_on(self)
///     }
/// }
///
/// assert!(parallelizer::modes().contains(&"solo".to_string()));
/// let par = parallelizer::from_config("solo").unwrap();
/// assert_eq!(par.run(|p: &dyn Parallelizer, x: u32| p.nprocs() as u32 + x, 41).unwrap(), 42);
/// ```
#[proc_macro_attribute]
pub fn parallelizer(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attr(Kind::Backend, args.into(), item.into()).into()
}

/// Runs a fn only on main (rank 0): `fn f(..) -> T` becomes
/// `fn f(..) -> Restricted<T>`, which is `Restricted::Ran(value)` on main and
/// `Restricted::InWorkerProcess` on a worker, where the body does not run
/// (McUtils `main_restricted`).
///
/// The rank is read from, in order:
/// 1. `#[main_restricted(par = expr)]`: any expression, evaluated in the fn
///    with the parameters in scope (`par = self`, `par = self.par`);
/// 2. the parameter marked `#[par]` (any type the guard can ask: a concrete
///    backend, `Arc<MyBackend>`, ...);
/// 3. the first parameter whose type, after `&`/`&mut`, is `dyn Parallelizer`,
///    `impl Parallelizer`, a type parameter bounded by `Parallelizer` or
///    `AsParallelizer` (use `P: AsParallelizer + ?Sized` to accept both
///    `&dyn Parallelizer` and concrete backends), or `Arc`/`Rc`/`Box` of one
///    of these (`&Arc<dyn Parallelizer>`); this is a syntactic rule, so a
///    concrete backend type (`&Threads`) needs `#[par]`;
/// 4. else `parallelizer::current()`: the rank handle inside a region, the
///    default parallelizer outside.
///
/// Works on free fns, methods (any `self`) and associated fns; attributes,
/// doc comments, generics and where clauses are kept, and `return` and `?`
/// in the body keep their meaning (the body runs in a closure). `async fn`
/// and `const fn` are rejected. `Restricted` is not `#[must_use]`, so a
/// guarded fn can be called as a statement. When the return type has elided
/// lifetimes or `impl Trait`, the closure's return type is inferred rather
/// than written. Also takes `crate = "path"`.
///
/// ```
/// use parallelizer::{main_restricted, Parallelizer, Restricted};
///
/// #[main_restricted]
/// fn report(par: &dyn Parallelizer, x: u32) -> (String, u32) {
///     ("main".to_string(), x)
/// }
///
/// let par = parallelizer::from_config("threads:3").unwrap();
/// let all = par.run(|p: &dyn Parallelizer, ()| p.gather(report(p, 1)).unwrap(), ()).unwrap();
/// assert_eq!(all.unwrap(), [
///     Restricted::Ran(("main".to_string(), 1)),
///     Restricted::InWorkerProcess,
///     Restricted::InWorkerProcess,
/// ]);
/// ```
#[proc_macro_attribute]
pub fn main_restricted(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attr(Kind::MainRestricted, args.into(), item.into()).into()
}

/// Runs a fn only on workers (ranks 1..): the mirror image of
/// [`macro@main_restricted`]. `fn f(..) -> T` becomes `fn f(..) -> Restricted<T>`,
/// `Restricted::Ran(value)` on a worker and `Restricted::InMainProcess` on
/// main (and on a serial parallelizer, whose only rank is main). The rank
/// comes from the same places: `par = expr`, a `#[par]` parameter, the first
/// parallelizer parameter, else `parallelizer::current()`.
///
/// ```
/// use parallelizer::{worker_restricted, Parallelizer, Restricted};
///
/// struct Logger;
/// impl Logger {
///     /// Which worker am I?
///     #[worker_restricted]
///     fn who(&self, par: &dyn Parallelizer) -> usize {
///         par.id()
///     }
/// }
///
/// let par = parallelizer::from_config("threads:3").unwrap();
/// let all = par.run(|p: &dyn Parallelizer, ()| p.gather(Logger.who(p)).unwrap(), ()).unwrap();
/// assert_eq!(all.unwrap(), [Restricted::InMainProcess, Restricted::Ran(1), Restricted::Ran(2)]);
/// // Outside a region the rank is the default's: serial, so main.
/// #[worker_restricted]
/// fn only_on_workers() { unreachable!() }
/// only_on_workers(); // a statement: no unused-result warning
/// ```
#[proc_macro_attribute]
pub fn worker_restricted(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attr(Kind::WorkerRestricted, args.into(), item.into()).into()
}

/// Registers a fn by its module path at link time, so that a worker process
/// (processes, MPI) can run it by name: `par.run(f, args)` and the
/// pool-style maps (`par.map(f, Some(data))` and its siblings, called on
/// main outside a region) find the registration from the fn itself. The fn
/// stays an ordinary fn, callable directly.
///
/// The shapes, and the calls each serves:
///
/// | fn | serves |
/// |---|---|
/// | `fn name(par: &dyn Parallelizer, args: A) -> R` | `par.run(name, args)` |
/// | `fn name(item: T) -> R` | `map` |
/// | `fn name(item: T, extra: &E) -> R` | `map_with` |
/// | `fn name(items: Vec<T>) -> Vec<R>` | `map_chunks`, and `map` over items that are vectors |
/// | `fn name(items: Vec<T>, extra: &E) -> Vec<R>` | `map_chunks_with`, and `map_with` over vectors |
/// | `fn name(a: A, b: B, ..) -> R` (2 to 6 fields) | `starmap` over tuples `(A, B, ..)` |
/// | `fn name(a: A, b: B, .., extra: &E) -> R` | `starmap_with` |
///
/// A region task's `args` may be a tuple pattern, `(a, b): (u32, String)`;
/// if its `R` is written as a `Result<_, E>` (`E: Display`), an `Err` on a
/// worker rank becomes `Error::TaskFailed { rank, message }` from `run`.
/// Items are taken by value; only the last parameter, the extra argument
/// that main broadcasts, is a reference (`&E`). The calls a fn serves are
/// read from its signature; name them when a type alias hides a `Vec`
/// (`#[task(map_chunks)] fn f(xs: Batch) -> Batch`), or to serve fewer:
/// `map`, `map_with`, `map_chunks`, `map_chunks_with`, `starmap`,
/// `starmap_with`. Inside a region (and on serial and threads) the maps
/// take closures too; only a map that crosses processes needs the
/// registration, and a fn that lacks it is `Error::TaskNotRegistered`.
///
/// The fn must be a free, non-generic, safe, synchronous Rust fn at module
/// level (a worker calls it with no `self`, by one name). The attribute
/// cannot see an enclosing `impl`; on an associated fn rustc reports
/// "`const` items in this context need a name": move the fn out of the
/// impl. Tasks are listed by `parallelizer::backend::tasks()` sorted by path, which
/// gives every rank the same dense ids. Tasks (and backends) defined in
/// another crate are found only if the binary names that crate once, e.g.
/// `use my_tasks as _;` (rustc does not link a dependency that is never
/// named). Takes `crate = "path"`.
///
/// ```
/// use parallelizer::{task, Parallelizer};
///
/// #[task]
/// fn sum_to(par: &dyn Parallelizer, n: u64) -> Option<u64> {
///     let mine: u64 = par.scatter(par.on_main().then(|| (1..=n).collect())).unwrap().iter().sum();
///     par.gather(mine).unwrap().map(|v| v.iter().sum())
/// }
///
/// #[task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[task]
/// fn scaled(x: u64, k: &u64) -> u64 { x * k }
///
/// #[task]
/// fn area(w: u64, h: u64) -> u64 { w * h }
///
/// // Found from the fn itself, or by name.
/// fn entry_of<F>(_: F) -> Option<&'static parallelizer::backend::TaskEntry> { parallelizer::backend::task_of::<F>() }
/// assert!(entry_of(sum_to).is_some() && entry_of(square).is_some());
/// let path = concat!(module_path!(), "::sum_to");
/// assert_eq!(parallelizer::backend::task_by_path(path).unwrap().path, path);
/// let par = parallelizer::from_config("threads:3").unwrap();
/// assert_eq!(par.run(sum_to, 100).unwrap(), Some(5050));
/// assert_eq!(par.map(square, Some(vec![1, 2, 3])).unwrap(), Some(vec![1, 4, 9]));
/// assert_eq!(par.map_with(scaled, Some(vec![1, 2]), Some(10)).unwrap(), Some(vec![10, 20]));
/// assert_eq!(par.starmap(area, Some(vec![(2, 3), (4, 5)])).unwrap(), Some(vec![6, 20]));
/// ```
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attr(Kind::Task, args.into(), item.into()).into()
}

/// Marks `fn main` as the program's entry: the worker entry runs first, so
/// in a worker process launched by a backend the body never runs: the
/// worker serves tasks until main shuts it down, then exits (the Rust form
/// of Python's `if __name__ == "__main__":`). In every other process it
/// returns at once and the body runs as written.
///
/// `main` may return `()` or a `Result`; it must not be `async`, generic or
/// take parameters, and must be named `main` (elsewhere call
/// `parallelizer::worker_entry()` yourself). Takes `crate = "path"`.
///
/// ```
/// #[parallelizer::main]
/// fn main() -> Result<(), parallelizer::Error> {
///     let par = parallelizer::from_config("threads:2")?;
///     assert_eq!(par.nprocs(), 2);
///     Ok(())
/// }
/// # main().unwrap();
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attr(Kind::Main, args.into(), item.into()).into()
}

/// `#[test]` with the worker entry first, for tests that use process-based
/// backends: a worker launched for this test (the test binary re-executed
/// with the test's exact name) serves tasks instead of running the body.
/// Use it instead of `#[test]` (it adds `#[test]`; writing both is an
/// error); `#[should_panic]`, `#[ignore]` and other attributes are kept.
/// The test may return `()` or a `Result`. Works under cargo test and
/// nextest. Takes `crate = "path"`.
///
/// ```
/// #[parallelizer::test]
/// fn gathers_every_rank() {
///     let par = parallelizer::from_config("threads:2").unwrap();
///     let ids = par.run(|p: &dyn parallelizer::Parallelizer, ()| p.gather(p.id()).unwrap(), ()).unwrap();
///     assert_eq!(ids, Some(vec![0, 1]));
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attr(Kind::Test, args.into(), item.into()).into()
}

#[cfg(test)]
mod expansion_tests;
