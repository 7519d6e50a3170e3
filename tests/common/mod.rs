//! The SPMD suite shared by every mode's tests: each fn runs on every rank
//! of a region and returns main's view, so a test can compare modes.
//!
//! The McUtils test suite (mcutils-spec.md section 3) is ported here with
//! its intent-corrected expectations. The fns are `#[parallelizer::task]`s
//! so that the process backend's workers can run them by name.
#![allow(dead_code)]

pub mod workload;

use parallelizer::prelude::*;
use serde::{Deserialize, Serialize};

/// McUtils H5 `scatter_gather`: the chunk length each rank got.
#[parallelizer::task]
pub fn chunk_lens(par: &dyn Parallelizer, n: usize) -> Option<Vec<usize>> {
    let data = par.on_main().then(|| (0..n as u64).collect::<Vec<_>>());
    let chunk = par.scatter(data).unwrap();
    par.gather(chunk.len()).unwrap()
}

/// Scatter then gather of the chunks themselves: main gets the data back.
#[parallelizer::task]
pub fn scatter_roundtrip(par: &dyn Parallelizer, n: u32) -> Option<Vec<u32>> {
    let data = par.on_main().then(|| (0..n).collect::<Vec<_>>());
    let chunk = par.scatter(data).unwrap();
    par.gather(chunk).unwrap().map(|c| c.concat())
}

/// Gather of each rank's id and pid-independent label, main first.
#[parallelizer::task]
pub fn gather_ids(par: &dyn Parallelizer, (): ()) -> Option<Vec<(usize, String)>> {
    par.gather((par.id(), format!("rank-{}", par.id())))
        .unwrap()
}

/// A struct with heap fields, to broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub method: String,
    pub basis: Vec<String>,
    pub thresholds: Vec<f64>,
    pub nested: Option<Box<Job>>,
}

pub fn sample_job() -> Job {
    Job {
        method: "CCSD(T)".into(),
        basis: vec!["cc-pVDZ".into(), "aug-cc-pVTZ".into()],
        thresholds: vec![1e-8, 1e-6],
        nested: Some(Box::new(Job {
            method: "MP2".into(),
            basis: vec![],
            thresholds: vec![],
            nested: None,
        })),
    }
}

/// Broadcast of a struct; every rank echoes what it got back to main.
#[parallelizer::task]
pub fn broadcast_struct(par: &dyn Parallelizer, (): ()) -> Option<Vec<Job>> {
    let job = par.broadcast(par.on_main().then(sample_job)).unwrap();
    par.gather(job).unwrap()
}

#[parallelizer::task]
pub fn square(x: i64) -> i64 {
    x * x - 3
}

/// `map` inside a region.
#[parallelizer::task]
pub fn map_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<i64>> {
    par.map(square, par.on_main().then(|| (0..n).collect()))
        .unwrap()
}

/// `map_with`: McUtils `extra_args`.
#[parallelizer::task]
pub fn map_with_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<i64>> {
    let data = par.on_main().then(|| (0..n).collect());
    par.map_with(
        |x: i64, k: &(i64, i64)| x * k.0 + k.1,
        data,
        par.on_main().then_some((2, 100)),
    )
    .unwrap()
}

/// `map_chunks`: McUtils `vectorized=True`.
#[parallelizer::task]
pub fn map_chunks_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<i64>> {
    let data = par.on_main().then(|| (0..n).collect());
    par.map_chunks(
        |xs: Vec<i64>| xs.into_iter().map(|x| x + 1000).collect(),
        data,
    )
    .unwrap()
}

/// `starmap` over pairs, flat like `map`.
#[parallelizer::task]
pub fn starmap_in_region(par: &dyn Parallelizer, n: i64) -> Option<Vec<(i64, i64, i64)>> {
    let data = par.on_main().then(|| (0..n).map(|i| (i, i * i)).collect());
    par.starmap(|a: i64, b: i64| (a, b, -1), data).unwrap()
}

/// Point-to-point between two workers: rank 1 sends to the last rank, which
/// reports to main. With fewer than 3 ranks main and rank 1 talk instead.
#[parallelizer::task]
pub fn worker_to_worker(par: &dyn Parallelizer, (): ()) -> Option<String> {
    let last = par.nprocs() - 1;
    if par.nprocs() == 1 {
        return Some("solo".into());
    }
    let (from, to) = if par.nprocs() >= 3 { (1, last) } else { (1, 0) };
    let mut got = None;
    if par.id() == from {
        par.send(format!("hello from {from} to {to}"), to).unwrap();
    }
    if par.id() == to {
        got = Some(par.receive::<String>(from).unwrap());
    }
    if to != 0 {
        if par.id() == to {
            par.send(got.take().unwrap(), 0).unwrap();
        }
        if par.on_main() {
            got = Some(par.receive::<String>(to).unwrap());
        }
    }
    got
}

/// A barrier, then a gather: every rank passed `wait`.
#[parallelizer::task]
pub fn wait_then_gather(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    par.wait().unwrap();
    par.wait().unwrap();
    par.gather(par.id()).unwrap()
}

/// McUtils H1 `run_job` (T1), without the 3 s sleep: broadcast "woop",
/// scatter arange(1000), gather the lengths, sum.
#[parallelizer::task]
pub fn run_job(par: &dyn Parallelizer, (): ()) -> Option<usize> {
    let woop = par
        .broadcast(par.on_main().then(|| "woop".to_string()))
        .unwrap();
    assert_eq!(woop, "woop");
    chunk_lens(par, 1000).map(|lens| lens.iter().sum())
}

/// McUtils H3 `map_applier` (T2, T3): the McUtils map workload, vectorized.
#[parallelizer::task]
pub fn map_applier(par: &dyn Parallelizer, (n, r): (u8, u8)) -> Option<Vec<u32>> {
    let data = par.on_main().then(|| workload::combinations(n, r));
    par.map_chunks(workload::mapped_func, data).unwrap()
}

/// McUtils H6 `simple_scatter_1` (T7a): nine 1x2 arrays, one per rank on 9 ranks.
#[parallelizer::task]
pub fn simple_scatter_1(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    let list: Vec<[[i32; 2]; 1]> = (0..3).flat_map(|i| (0..3).map(move |j| [[i, j]])).collect();
    let data = par.on_main().then_some(list);
    par.gather(par.scatter(data).unwrap().len()).unwrap()
}

/// McUtils H7 `simple_print` (T7b): printing a non-string works everywhere.
#[parallelizer::task]
pub fn simple_print(par: &dyn Parallelizer, (): ()) -> bool {
    par.print(Where::Both, 1);
    par.print(Where::Both, "{'a': 1}");
    true
}

/// Plain-data collectives: scatter_pod, square, gather_pod; broadcast_pod.
#[parallelizer::task]
pub fn pod_roundtrip(par: &dyn Parallelizer, n: usize) -> Option<(Vec<f64>, f64)> {
    let data = par
        .on_main()
        .then(|| (0..n).map(|i| i as f64).collect::<Vec<_>>());
    let mine: Vec<f64> = par
        .scatter_pod(data)
        .unwrap()
        .iter()
        .map(|x| x * x)
        .collect();
    let back = par.gather_pod(mine).unwrap();
    let shared = par
        .broadcast_pod(par.on_main().then(|| vec![0.5f64; 3]))
        .unwrap();
    let sums = par.gather(shared.iter().sum::<f64>()).unwrap();
    back.zip(sums.map(|s| s.iter().sum()))
}

/// The reference chunk-size table (mcutils-spec.md 1.5.2) as (items, ranks, sizes).
pub fn chunk_table() -> Vec<(usize, usize, Vec<usize>)> {
    vec![
        (1000, 4, vec![250; 4]),
        (1000, 5, vec![200; 5]),
        (1000, 15, [vec![67; 10], vec![66; 5]].concat()),
        (1000, 16, [vec![63; 8], vec![62; 8]].concat()),
        (10, 3, vec![4, 3, 3]),
        (10, 4, vec![3, 3, 2, 2]),
        (2, 4, vec![1, 1, 0, 0]),
        (3, 3, vec![1, 1, 1]),
        (9, 9, vec![1; 9]),
    ]
}
