//! The SPMD regions the suite runs on every backend, and their
//! registrations.
//!
//! Every region times itself on main (rank 0), OSU-style: per iteration an
//! untimed barrier (`wait`), then the timed operation; main returns the
//! median. Workers run the same loop and return `None`.

use parallelizer::Parallelizer;
use serde::{Deserialize, Serialize};

use crate::measure::{Iters, median};
use crate::workloads::{combinations, f64_data, fine_work, mapped_func, string_data, wait_item};

/// The dispatch workload: nothing.
#[parallelizer::task]
pub fn empty(_par: &dyn Parallelizer, _args: ()) {}

/// Arguments of [`pingpong`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingArgs {
    /// Message size in bytes.
    pub bytes: usize,
    /// Iterations.
    pub iters: Iters,
}

/// Ping-pong of `bytes` between ranks 0 and 1; main returns the median
/// one-way time (round trip / 2), as OSU latency does. Other ranks idle.
/// The buffer travels with `send_pod`/`receive_pod` (raw bytes), as OSU and
/// the raw baselines move raw buffers.
#[parallelizer::task]
pub fn pingpong(p: &dyn Parallelizer, a: PingArgs) -> Option<f64> {
    let mut samples = Vec::new();
    for i in 0..a.iters.total() {
        match p.id() {
            0 => {
                let msg = vec![1u8; a.bytes];
                let t0 = std::time::Instant::now();
                p.send_pod(msg, 1).expect("send 0->1");
                let back: Vec<u8> = p.receive_pod(1).expect("receive 1->0");
                let dt = t0.elapsed().as_secs_f64() / 2.0;
                assert_eq!(back.len(), a.bytes);
                if i >= a.iters.warmup {
                    samples.push(dt);
                }
            }
            1 => {
                let got: Vec<u8> = p.receive_pod(0).expect("receive 0->1");
                p.send_pod(got, 0).expect("send 1->0");
            }
            _ => {}
        }
    }
    p.on_main().then(|| median(samples))
}

/// The same ping-pong through the buffer calls, `send_slice` and
/// `receive_into` on one buffer allocated once (mpi4py's `Send`/`Recv`
/// into a numpy array); main returns the median one-way time.
#[parallelizer::task]
pub fn pingpong_into(p: &dyn Parallelizer, a: PingArgs) -> Option<f64> {
    let mut buf: Vec<u8> = parallelizer::plain_buffer(a.bytes);
    buf.fill(1);
    let mut samples = Vec::new();
    for i in 0..a.iters.total() {
        match p.id() {
            0 => {
                let t0 = std::time::Instant::now();
                p.send_slice(&buf, 1).expect("send 0->1");
                p.receive_into(&mut buf, 1).expect("receive 1->0");
                let dt = t0.elapsed().as_secs_f64() / 2.0;
                if i >= a.iters.warmup {
                    samples.push(dt);
                }
            }
            1 => {
                p.receive_into(&mut buf, 0).expect("receive 0->1");
                p.send_slice(&buf, 0).expect("send 1->0");
            }
            _ => {}
        }
    }
    assert!(buf.iter().all(|&b| b == 1));
    p.on_main().then(|| median(samples))
}

/// Which collective [`collective`] times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `broadcast` from main.
    Bcast,
    /// `scatter` from main.
    Scatter,
    /// `gather` of each rank's chunk to main.
    Gather,
    /// `scatter` then `gather` of the chunk (McUtils' "scatter+gather").
    ScatterGather,
}

impl Op {
    /// All of them, in table order.
    pub const ALL: [Op; 4] = [Op::Bcast, Op::Scatter, Op::Gather, Op::ScatterGather];

    /// Short key used in result files.
    pub fn key(self) -> &'static str {
        match self {
            Op::Bcast => "bcast",
            Op::Scatter => "scatter",
            Op::Gather => "gather",
            Op::ScatterGather => "sg",
        }
    }
}

/// The payload of [`collective`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// `Vec<f64>` through the serde calls.
    F64,
    /// `Vec<f64>` through the `*_pod` calls (raw bytes, no codec).
    F64Pod,
    /// `Vec<String>` through the serde calls.
    Str,
}

impl Kind {
    /// All of them, in table order.
    pub const ALL: [Kind; 3] = [Kind::F64, Kind::F64Pod, Kind::Str];

    /// Short key used in result files.
    pub fn key(self) -> &'static str {
        match self {
            Kind::F64 => "f64",
            Kind::F64Pod => "f64pod",
            Kind::Str => "str",
        }
    }
}

/// Arguments of [`collective`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollArgs {
    /// Which collective.
    pub op: Op,
    /// Which payload.
    pub kind: Kind,
    /// Items in main's vector.
    pub n: usize,
    /// Iterations.
    pub iters: Iters,
}

/// Times one collective; main returns the median seconds per call.
#[parallelizer::task]
pub fn collective(p: &dyn Parallelizer, a: CollArgs) -> Option<f64> {
    match a.kind {
        Kind::F64 | Kind::F64Pod => collective_of(p, &a, f64_data(a.n)),
        Kind::Str => collective_of(p, &a, string_data(a.n)),
    }
}

fn my_chunk<T: Clone>(p: &dyn Parallelizer, full: &[T]) -> Vec<T> {
    let sizes = parallelizer::chunk_sizes(full.len(), p.nprocs());
    let start: usize = sizes[..p.id()].iter().sum();
    full[start..start + sizes[p.id()]].to_vec()
}

fn collective_of<T>(p: &dyn Parallelizer, a: &CollArgs, full: Vec<T>) -> Option<f64>
where
    T: parallelizer::Data + Clone + PodOrNot,
{
    let pod = a.kind == Kind::F64Pod;
    let mut samples = Vec::new();
    for i in 0..a.iters.total() {
        // Untimed: the inputs, then a barrier so every rank starts together.
        let data = p.on_main().then(|| full.clone());
        let chunk = my_chunk(p, &full);
        p.wait().expect("barrier");
        let t0 = std::time::Instant::now();
        // What the call returned is dropped after the clock stops: freeing
        // main's own 80 MB vector (a broadcast returns it, a scatter keeps
        // it as main's chunk) took 14 ms, which is no part of the call.
        let kept = call(p, a.op, data, chunk, pod, a.n);
        let dt = t0.elapsed().as_secs_f64();
        drop(std::hint::black_box(kept));
        if i >= a.iters.warmup {
            samples.push(dt);
        }
    }
    p.on_main().then(|| median(samples))
}

/// One generic (or `*_pod`) call of `op` on main's `data` and this rank's
/// `chunk` of `n` items; what it returned, and the input it did not take,
/// to be dropped untimed (freeing main's unused 1e5 strings inside the
/// clock made a gather of them on `threads:2` read 1.6 ms instead of 40 µs).
fn call<T: PodOrNot + 'static>(
    p: &dyn Parallelizer,
    op: Op,
    data: Option<Vec<T>>,
    chunk: Vec<T>,
    pod: bool,
    n: usize,
) -> Vec<Box<dyn std::any::Any>> {
    match op {
        Op::Bcast => vec![Box::new(T::bcast(p, data, pod)), Box::new(chunk)],
        Op::Scatter => vec![Box::new(T::scatter(p, data, pod)), Box::new(chunk)],
        Op::Gather => {
            let mut kept = gathered(T::gather(p, chunk, pod), n);
            kept.push(Box::new(data));
            kept
        }
        Op::ScatterGather => {
            let mine = T::scatter(p, data, pod);
            let mut kept = gathered(T::gather(p, mine, pod), n);
            kept.push(Box::new(chunk));
            kept
        }
    }
}

/// The generic call of `op` on a `Vec<f64>` (main's `data`, this rank's
/// `chunk`, `n` items in all), as the collectives table times it; what it
/// returned, to be dropped untimed.
pub fn generic_f64(
    p: &dyn Parallelizer,
    op: Op,
    data: Option<Vec<f64>>,
    chunk: Vec<f64>,
    n: usize,
) -> Vec<Box<dyn std::any::Any>> {
    call(p, op, data, chunk, false, n)
}

/// Main's gathered result, checked to hold `n` elements.
fn gathered(all: Option<(usize, Box<dyn std::any::Any>)>, n: usize) -> Vec<Box<dyn std::any::Any>> {
    all.map(|(len, all)| {
        assert_eq!(len, n);
        all
    })
    .into_iter()
    .collect()
}

/// Dispatches a collective to the serde or the `*_pod` call.
trait PodOrNot: Sized {
    fn bcast(p: &dyn Parallelizer, data: Option<Vec<Self>>, pod: bool) -> Vec<Self>;
    fn scatter(p: &dyn Parallelizer, data: Option<Vec<Self>>, pod: bool) -> Vec<Self>;
    /// Main: the number of elements gathered and the result as the call
    /// returns it (not flattened: a copy of every element that is the
    /// benchmark's, not the library's).
    fn gather(
        p: &dyn Parallelizer,
        mine: Vec<Self>,
        pod: bool,
    ) -> Option<(usize, Box<dyn std::any::Any>)>;
}

impl PodOrNot for f64 {
    fn bcast(p: &dyn Parallelizer, data: Option<Vec<f64>>, pod: bool) -> Vec<f64> {
        if pod {
            p.broadcast_pod(data)
        } else {
            p.broadcast(data)
        }
        .expect("broadcast")
    }
    fn scatter(p: &dyn Parallelizer, data: Option<Vec<f64>>, pod: bool) -> Vec<f64> {
        if pod {
            p.scatter_pod(data)
        } else {
            p.scatter(data)
        }
        .expect("scatter")
    }
    fn gather(
        p: &dyn Parallelizer,
        mine: Vec<f64>,
        pod: bool,
    ) -> Option<(usize, Box<dyn std::any::Any>)> {
        if pod {
            let all = p.gather_pod(mine).expect("gather_pod");
            all.map(|all| (all.len(), Box::new(all) as Box<dyn std::any::Any>))
        } else {
            let all = p.gather(mine).expect("gather");
            all.map(|all| (all.iter().map(Vec::len).sum(), Box::new(all) as _))
        }
    }
}

impl PodOrNot for String {
    fn bcast(p: &dyn Parallelizer, data: Option<Vec<String>>, _: bool) -> Vec<String> {
        p.broadcast(data).expect("broadcast")
    }
    fn scatter(p: &dyn Parallelizer, data: Option<Vec<String>>, _: bool) -> Vec<String> {
        p.scatter(data).expect("scatter")
    }
    fn gather(
        p: &dyn Parallelizer,
        mine: Vec<String>,
        _: bool,
    ) -> Option<(usize, Box<dyn std::any::Any>)> {
        let all = p.gather(mine).expect("gather");
        all.map(|all| (all.iter().map(Vec::len).sum(), Box::new(all) as _))
    }
}

/// Arguments of the map regions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapArgs {
    /// Fine map: items. Coarse map: `n` of combinations(n, r).
    pub n: usize,
    /// Coarse map: `r` of combinations(n, r); unused by the fine map.
    pub r: usize,
    /// Iterations.
    pub iters: Iters,
}

/// The fine-grained map: `par.map(fine_work, data)` over `n` f64 items;
/// main returns the median seconds (inputs built untimed).
#[parallelizer::task]
pub fn map_fine(p: &dyn Parallelizer, a: MapArgs) -> Option<f64> {
    let mut samples = Vec::new();
    for i in 0..a.iters.total() {
        let data = p.on_main().then(|| f64_data(a.n));
        p.wait().expect("barrier");
        let t0 = std::time::Instant::now();
        let out = p.map(fine_work, data).expect("map");
        let dt = t0.elapsed().as_secs_f64();
        if let Some(out) = out {
            assert_eq!(out.len(), a.n);
        }
        if i >= a.iters.warmup {
            samples.push(dt);
        }
    }
    p.on_main().then(|| median(samples))
}

/// The coarse map, McUtils' `map_applier(n, r)`:
/// `par.map_chunks(mapped_func, combinations(n, r))`, flat results.
#[parallelizer::task]
pub fn map_coarse(p: &dyn Parallelizer, a: MapArgs) -> Option<f64> {
    let mut samples = Vec::new();
    for i in 0..a.iters.total() {
        let data = p.on_main().then(|| combinations(a.n as u8, a.r as u8));
        p.wait().expect("barrier");
        let t0 = std::time::Instant::now();
        let out = p.map_chunks(mapped_func, data).expect("map_chunks");
        let dt = t0.elapsed().as_secs_f64();
        if let Some(out) = out {
            assert_eq!(out.len(), coarse_len(a.n, a.r));
        }
        if i >= a.iters.warmup {
            samples.push(dt);
        }
    }
    p.on_main().then(|| median(samples))
}

/// The number of results of the coarse map: C(n, r) * r!.
pub fn coarse_len(n: usize, r: usize) -> usize {
    if r > n {
        return 0;
    }
    (n - r + 1..=n).product()
}

// ---- Pool-style maps: `par.map(f, data)` on main outside a region, with
// the fns registered so that processes and MPI workers can run them.

/// An item of an imbalanced map ([`crate::workloads::Imbalance`]).
#[parallelizer::task]
pub fn waits(micros: u64) -> u64 {
    wait_item(micros)
}

/// An item of the fine map.
#[parallelizer::task]
pub fn fine(x: f64) -> f64 {
    fine_work(x)
}

/// A chunk of the coarse map (McUtils `mapped_func`, `vectorized=True`).
#[parallelizer::task]
pub fn coarse(combos: Vec<Vec<u8>>) -> Vec<u32> {
    mapped_func(combos)
}
