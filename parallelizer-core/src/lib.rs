//! The runtime of [`parallelizer`](https://docs.rs/parallelizer): the
//! [`Parallelizer`] trait, the typed API on `dyn Parallelizer`, the registry
//! and the backends. Users depend on the `parallelizer` facade, which
//! re-exports this crate and the macros.
//!
//! The crate root is the user API; [`backend`] is the API for backend
//! authors (and holds the built-in backends); `__private` is what the
//! macros' expansions name.
//!
//! ```
//! use parallelizer_core::{from_config, Parallelizer};
//! let par = from_config("threads:4").unwrap();
//! let squares = par.map(|x: u64| x * x, Some((1..=8).collect())).unwrap();
//! assert_eq!(squares.unwrap().iter().sum::<u64>(), 204);
//! ```
#![deny(missing_docs)]
// Every `unsafe` block says why it is sound, and an `unsafe fn` is no
// licence for unchecked operations in its body.
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]
// docs.rs (nightly, `--cfg docsrs`): mark feature- and platform-gated items
// ("Available on crate feature `mpi` only", "on Linux only").
#![cfg_attr(docsrs, feature(doc_cfg))]

// `#[parallelizer(...)]` and the generated code name `::parallelizer_core`
// items through `crate::__private` when used inside this crate.
extern crate self as parallelizer_core;

mod any_source;
mod api;
mod attach;
pub mod backend;
mod config;
mod contract;
mod cpu;
mod entry;
mod error;
mod gated;
mod group;
mod guard;
mod link;
mod msg;
mod names;
mod native;
mod op;
mod outcome;
mod pages;
mod parallelizer;
mod parts;
mod plain;
mod reduce;
mod registry;
mod runtime;
mod segment;
mod shared;
mod slots;
mod split;
mod task;
mod trace;
mod tree;

pub use api::{
    Apply, ApplyWith, EnterGuard, Flat, Layout, Mapper, PerRank, Progress, Schedule, Where,
};
pub use config::{Config, LogLevel};
pub use contract::CallerContract;
pub use entry::worker_entry;
pub use error::{Error, Result, Wait};
pub use guard::{AsParallelizer, Restricted, main_restricted, worker_restricted};
pub use msg::Data;
pub use op::Op;
pub use pages::plain_buffer;
pub use parallelizer::Parallelizer;
pub use parallelizer_macros::parallelizer;
pub use plain::is_plain;
pub use reduce::{Reduce, ReduceOp, Reducible};
pub use registry::{
    Key, Spec, current, from_config, from_env, get_default, lookup, modes, registered_names,
    reset_default, set_default,
};
pub use shared::{
    Array, AtomicElement, Atomics, MapValue, Owned, OwnedArray, OwnedMap, ReadGuard, Share,
    SharedArray, SharedMap, WriteGuard,
};
pub use split::chunk_sizes;

/// Items the macros' expansions name; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::entry::{test_worker_entry, worker_entry};
    pub use crate::guard::AsParallelizer;
    pub use crate::msg::Msg;
    pub use crate::plain::PlainEntry;
    pub use crate::registry::{BackendEntry, build_backend};
    pub use crate::task::{MapForm, MapWorker, TASKS, TaskEntry, TaskKind, task_outcome};
    pub use crate::{
        Parallelizer, Restricted, Result, current, main_restricted, worker_restricted,
    };
    pub use inventory;
    pub use linkme;
    pub use std;
}
