//! The integration tests that can share one process, as one test binary
//! (one link instead of a dozen): a module per area, named as the test file
//! it used to be, so `cargo test --test it processes::` or
//! `cargo nextest run -E 'test(/^processes::/)'` runs one area.
//!
//! libtest runs the tests of this binary on parallel threads (nextest runs
//! each in its own process), so a test here must not depend on process-wide
//! state that another test changes. What does lives in its own target:
//! - `tests/registry/`: changes and reads the global default (so does
//!   `lookup` falling back to it, in `duplicate_backend`), the entered stack
//!   and the `PARALLELIZER` environment variable, and counts this process's
//!   rank threads;
//! - `tests/dead_strip.rs`: names the fixture crate of registrations, which
//!   `dead_strip_unlinked` here checks is *not* linked when not named;
//! - `tests/processes_spmd.rs`: `harness = false`, its workers run its `main`;
//! - `tests/mpi_suite.rs`: `harness = false`, run under `mpirun` by
//!   `.ci/mpi.sh`.
//!
//! Tests here that start worker processes (`processes_suite`) hold
//! [`common::procs::spawns`]; the ones that check that no worker is left
//! behind (`processes`) hold [`common::procs::counts_workers`], which
//! excludes them.
//!
//! `#[parallelizer::test]` names include the module (`processes::ring`):
//! the processes backend re-executes this binary with `--exact` and that
//! name, under `cargo test` and `cargo nextest run` alike. Task paths
//! start with the crate name, `it::` (e.g. `it::initializer::count_call`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod dead_strip_unlinked;
mod entry;
mod guards;
mod initializer;
mod lending;
#[cfg(target_os = "linux")]
mod lending_processes;
mod local_modes;
mod loopback;
mod macros_ui;
mod parity;
mod posts;
#[cfg(target_os = "linux")]
mod processes;
#[cfg(target_os = "linux")]
mod processes_suite;
mod shared;
#[cfg(target_os = "linux")]
mod shared_processes;
mod tasks;
mod threads_faults;
