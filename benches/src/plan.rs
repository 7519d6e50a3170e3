//! What one run measures (sizes, rank counts, iterations), shared with the
//! helper processes (`mpi_raw`, the suite under `mpirun`, `bench.py`)
//! through a JSON file, and the flat result files they write back.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::measure::Iters;

/// The sizes and iteration counts of one run.
/// How many `mpirun` jobs each MPI thread level's figures are the median
/// of (their small calls swing from one job to the next).
pub const LEVEL_REPS: usize = 3;
/// How many alternated rounds the `_into` collectives of mpi and processes
/// and their raw rsmpi and mpi4py baselines are the median of (a job's
/// small collectives were 3x faster or slower with where its ranks ran).
pub const COLL_REPS: usize = 5;
/// How many alternated rounds the pool-style fine and coarse maps and
/// rayon's are the median of (fewer: a round of them takes seconds).
pub const MAP_REPS: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Smoke-test sizes (`--quick`).
    pub quick: bool,
    /// Rank counts for dispatch, collectives and maps.
    pub ranks: Vec<usize>,
    /// Ping-pong message sizes in bytes.
    pub pp_bytes: Vec<usize>,
    /// `Vec<f64>` lengths for the collectives.
    pub f64_ns: Vec<usize>,
    /// `Vec<String>` length for the collectives.
    pub str_n: usize,
    /// Items of the fine-grained map.
    pub fine_n: usize,
    /// `(n, r)` of the coarse map, combinations(n, r).
    pub coarse: (usize, usize),
    /// Dispatch (empty `run`) and barrier iterations.
    pub dispatch: Iters,
    /// Messages up to 1 MiB.
    pub small: Iters,
    /// Messages above 1 MiB. Ten untimed iterations first, as OSU's
    /// benchmarks skip for large messages: on the test VMs a fresh 8 MB
    /// buffer's broadcast took 2-4 ms, then 0.5-1.3 ms, and kept getting
    /// faster for about ten more calls (to 0.4-0.7 ms on processes, 0.22 ms
    /// on threads), so two warm-up calls timed the warming.
    pub large: Iters,
    /// Start-up iterations.
    pub startup: Iters,
    /// Fine map iterations: 20 untimed calls (about 0.1 s), as a map that
    /// follows an idle stretch (the imbalanced maps mostly sleep) ran its
    /// first 2-5 calls at 1.5-3.5 times its later speed on threads, and
    /// rayon its first 2 (`threads:2`, both in one program), so two warm-up
    /// calls timed the waking VM.
    pub fine: Iters,
    /// Coarse map iterations.
    pub coarse_iters: Iters,
    /// Imbalanced (pool-style) map iterations.
    #[serde(default = "imbalanced_iters")]
    pub imbalanced: Iters,
}

fn imbalanced_iters() -> Iters {
    Iters::new(1, 3)
}

impl Plan {
    /// The full suite (9-11 minutes on 2 cores) or the smoke test.
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                ranks: vec![2, 4],
                pp_bytes: vec![8, 1 << 10, 1 << 20, 16 << 20],
                f64_ns: vec![1_000, 1_000_000],
                str_n: 100_000,
                fine_n: 1_000_000,
                coarse: (10, 7),
                dispatch: Iters::new(5, 30),
                small: Iters::new(1, 5),
                large: Iters::new(1, 3),
                startup: Iters::new(1, 3),
                fine: Iters::new(1, 3),
                coarse_iters: Iters::new(1, 3),
                imbalanced: Iters::new(0, 1),
            }
        } else {
            Plan {
                quick,
                ranks: vec![2, 4],
                pp_bytes: vec![8, 1 << 10, 1 << 20, 16 << 20],
                f64_ns: vec![1_000, 1_000_000, 10_000_000],
                str_n: 100_000,
                fine_n: 1_000_000,
                coarse: (12, 9),
                dispatch: Iters::new(20, 200),
                small: Iters::new(3, 20),
                large: Iters::new(10, 15),
                startup: Iters::new(2, 10),
                fine: Iters::new(20, 15),
                coarse_iters: Iters::new(1, 3),
                imbalanced: imbalanced_iters(),
            }
        }
    }

    /// Iterations for a message of `bytes`.
    pub fn iters_for(&self, bytes: usize) -> Iters {
        if bytes <= 1 << 20 {
            self.small
        } else {
            self.large
        }
    }

    /// Reads a plan written by [`Plan::save`].
    pub fn load(path: &Path) -> std::io::Result<Plan> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Writes the plan for a helper process.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            serde_json::to_string_pretty(self).map_err(std::io::Error::other)?,
        )
    }
}

/// Figures by key (`dispatch:2`, `pp:1024`, `bcast:f64:1000000:4`, ...), in
/// seconds; a string value is a reason the figure is missing.
pub type Figures = BTreeMap<String, serde_json::Value>;

/// Key of a dispatch figure.
pub fn k_dispatch(p: usize) -> String {
    format!("dispatch:{p}")
}
/// Key of raw rsmpi's figure of `key` (dispatch, ping-pong, allreduce of
/// one f64) measured in the job of ours (`in_job.rs`).
pub fn k_in_job(key: &str) -> String {
    format!("in_job:{key}")
}
/// Key of a ping-pong figure (one-way seconds).
pub fn k_pp(bytes: usize) -> String {
    format!("pp:{bytes}")
}
/// Key of a ping-pong figure through `send_slice`/`receive_into`.
pub fn k_pp_into(bytes: usize) -> String {
    format!("pp_into:{bytes}")
}
/// Key of the cache-line round trip between the first two CPUs, probed
/// right after the ping-pong rows of `bytes` (`cores`).
pub fn k_line_rtt(bytes: usize) -> String {
    format!("line_rtt:{bytes}")
}
/// Key of a collective figure.
pub fn k_coll(op: &str, kind: &str, n: usize, p: usize) -> String {
    format!("{op}:{kind}:{n}:{p}")
}
/// Key of a fine map figure.
pub fn k_fine(p: usize) -> String {
    format!("map_fine:{p}")
}
/// Key of a coarse map figure.
pub fn k_coarse(p: usize) -> String {
    format!("map_coarse:{p}")
}
/// Key of an imbalanced pool-style map figure: `sched` is `dynamic` (the
/// default schedule) or `static` (one chunk per rank); `p` 1 is the serial
/// loop.
pub fn k_imbalanced(kind: &str, sched: &str, p: usize) -> String {
    format!("imb:{kind}:{sched}:{p}")
}
/// Key of a pool-style map figure (`fine` or `coarse`), outside a region.
pub fn k_pool(workload: &str, p: usize) -> String {
    format!("pool_{workload}:{p}")
}
/// Key of a start-up figure.
pub fn k_startup(p: usize) -> String {
    format!("startup:{p}")
}

/// Writes figures as JSON.
pub fn save_figures(path: &Path, f: &Figures) -> std::io::Result<()> {
    std::fs::write(
        path,
        serde_json::to_string_pretty(f).map_err(std::io::Error::other)?,
    )
}

/// Reads figures written by [`save_figures`] (or by `bench.py`).
pub fn load_figures(path: &Path) -> std::io::Result<Figures> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}

/// The value of `--name VALUE` in `args`.
pub fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
