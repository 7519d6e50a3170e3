//! # parallelizer
//!
//! One API for parallel work that runs unchanged on one thread, on every
//! core of a machine and across a cluster; the Rust successor of McUtils'
//! `Parallelizer`. See the README for a tour.
//!
//! ```
//! use parallelizer::prelude::*;
//! let par = parallelizer::from_config("threads:2").unwrap();
//! let total = par.run(|p: &dyn Parallelizer, n: u64| {
//!     let mine: u64 = p.scatter(p.on_main().then(|| (1..=n).collect())).unwrap().iter().sum();
//!     p.gather(mine).unwrap().map(|v| v.iter().sum::<u64>())
//! }, 10).unwrap();
//! assert_eq!(total, Some(55));
//! ```
#![deny(missing_docs)]
// docs.rs (nightly, `--cfg docsrs`): mark feature- and platform-gated items
// ("Available on crate feature `mpi` only", "on Linux only").
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use parallelizer_core::*;

// The attributes. `main_restricted` and `worker_restricted` are both an
// attribute (macro namespace, from here) and a fn (value namespace, from
// the glob above): `use parallelizer::main_restricted;` brings in both.
pub use parallelizer_macros::{main, main_restricted, task, test, worker_restricted};

/// The names most programs need: `use parallelizer::prelude::*;`.
///
/// It includes the attributes `#[main_restricted]`, `#[worker_restricted]`
/// and `#[task]` (the guards also as fns), not `main` and `test`, which
/// would clash with the built-in `#[test]`: write those as
/// `#[parallelizer::main]` and `#[parallelizer::test]`.
///
/// ```
/// use parallelizer::prelude::*;
///
/// #[task]
/// fn ids(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
///     par.gather(par.id()).unwrap()
/// }
///
/// #[main_restricted]
/// fn on_main_only() -> u8 { 1 }
///
/// let par = from_config("threads:2").unwrap();
/// assert_eq!(par.run(ids, ()).unwrap(), Some(vec![0, 1]));
/// assert_eq!(on_main_only(), Restricted::Ran(1));
/// assert_eq!(worker_restricted(&*par, || 2), Restricted::InMainProcess);
/// ```
pub mod prelude {
    pub use crate::{main_restricted, task, worker_restricted};
    pub use parallelizer_core::{
        Config, Data, Error, LogLevel, Parallelizer, Restricted, Result, Where, current,
        from_config, get_default, lookup,
    };
}

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
