//! Benchmarks of `parallelizer` across backends, each figure measured in the
//! same run as the baseline a user would pick instead. The entry point is
//! the `suite` binary (`bash benches/run.sh`); see `docs/bench-readme-section.md`.

pub mod cores;
pub mod data;
#[cfg(feature = "mpi")]
pub mod in_job;
pub mod measure;
pub mod memory;
pub mod ours;
pub mod plan;
pub mod rawsock;
pub mod report;
pub mod tasks;
pub mod workloads;
