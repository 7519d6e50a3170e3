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

pub use parallelizer_core::*;

// The attributes. `main_restricted` and `worker_restricted` are both an
// attribute (macro namespace, from here) and a fn (value namespace, from
// the glob above): `use parallelizer::main_restricted;` brings in both.
pub use parallelizer_macros::{main, main_restricted, task, test, worker_restricted};

/// The names most programs need: `use parallelizer::prelude::*;`.
pub mod prelude {
    pub use parallelizer_core::{
        Config, Data, Error, Parallelizer, Restricted, Result, Where, current, from_config,
        get_default, lookup,
    };
}

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
