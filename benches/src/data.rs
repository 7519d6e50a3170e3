//! The data-plane rows (issue 10): `broadcast_into`/`scatter_into`/
//! `gather_into` on the caller's buffers, `allreduce` of one and of a
//! million f64, `map_reduce`, and their baselines (raw rsmpi, mpi4py's
//! buffer API, rayon, a serial loop); and their section of BENCHMARKS.md.

use std::fmt::Write as _;
use std::sync::Arc;

use parallelizer::{Parallelizer, Reduce, plain_buffer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::measure::{Iters, median, time, time_with};
use crate::ours::record;
use crate::plan::{Figures, Plan};
use crate::report::{Store, fmt_time};
use crate::tasks::Op;
use crate::workloads::{f64_data, fine_work, plain_copy};

/// Key of an `_into` collective figure.
pub fn k_into(op: Op, n: usize, p: usize) -> String {
    format!("into:{}:{n}:{p}", op.key())
}
/// Key of raw rsmpi's `_into` collective measured in the same job as ours,
/// alternated with it (mpi).
pub fn k_into_raw(op: Op, n: usize, p: usize) -> String {
    format!("into_raw:{}:{n}:{p}", op.key())
}
/// Key of the generic call on a `Vec<f64>` measured in the same job (or
/// pool) as ours `_into`, right after it.
pub fn k_into_generic(op: Op, n: usize, p: usize) -> String {
    format!("into_generic:{}:{n}:{p}", op.key())
}
/// Key of an all-reduce figure (sum of `n` f64 on every rank).
pub fn k_allreduce(n: usize, p: usize) -> String {
    format!("allreduce:{n}:{p}")
}
/// Key of a `map_reduce` figure (the fine map, summed).
pub fn k_map_reduce(p: usize) -> String {
    format!("map_reduce:{p}")
}
/// Key of the rayon baseline of a small gather: a `broadcast` whose
/// closures return each thread's chunk, collected.
pub fn k_gather_collect(n: usize, p: usize) -> String {
    format!("gather_collect:{n}:{p}")
}

/// The all-reduce sizes.
pub const ALLREDUCE_NS: [usize; 2] = [1, 1_000_000];
/// The payload name of raw rsmpi's collectives on the memory the generic
/// calls get (`mpi_raw`): main's vector a fresh clone, results fresh.
pub const FRESH: &str = "f64fresh";

/// The size of the small gather compared with a rayon broadcast.
pub const SMALL_GATHER: usize = 1_000;

/// Arguments of [`into_collective`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntoArgs {
    /// Which collective.
    pub op: Op,
    /// Items in main's vector.
    pub n: usize,
    /// Iterations.
    pub iters: Iters,
}

/// `n` f64 in a buffer as the library advises for large ones
/// (`plain_buffer`: fresh pages, transparent huge pages from 2 MiB), filled.
fn filled(n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = plain_buffer(n);
    for (i, x) in v.iter_mut().enumerate() {
        *x = i as f64;
    }
    v
}

/// The buffers of [`into_collective`] for one size on one rank, kept
/// across the four calls of that size, as raw rsmpi's and mpi4py's
/// baselines keep theirs: made afresh for each call, the buffers came
/// from glibc's heap as its history left it, and the 1e7 `gather_into` on
/// `mpi:4` took 9.6-10.2 ms against 7.7-7.8 ms with glibc's mmap threshold
/// fixed (`MALLOC_MMAP_THRESHOLD_`), raw rsmpi's same call in the job too.
struct IntoBufs {
    /// `(n, ranks, rank)` they were made for.
    made_for: (usize, usize, usize),
    full: Vec<f64>,
    chunk: Vec<f64>,
    buf: Vec<f64>,
    mine: Vec<f64>,
    all: Vec<f64>,
}

thread_local! {
    /// This rank's [`IntoBufs`] (the threads backend's ranks are threads).
    static INTO_BUFS: std::cell::RefCell<Option<IntoBufs>> = const { std::cell::RefCell::new(None) };
}

impl IntoBufs {
    /// This rank's buffers for `n` items: the kept ones if they were made
    /// for `n` on this rank of as many ranks, else new ones (the kept ones
    /// dropped first).
    fn take(p: &dyn Parallelizer, n: usize) -> IntoBufs {
        let (on, id) = (p.on_main(), p.id());
        let made_for = (n, p.nprocs(), id);
        if let Some(kept) = INTO_BUFS.with(|b| b.borrow_mut().take())
            && kept.made_for == made_for
        {
            return kept;
        }
        let full = filled(n);
        let counts = parallelizer::chunk_sizes(n, p.nprocs());
        let lo: usize = counts[..id].iter().sum();
        IntoBufs {
            made_for,
            chunk: plain_copy(&full[lo..lo + counts[id]]),
            buf: if on {
                plain_copy(&full)
            } else {
                plain_buffer(n)
            },
            mine: plain_buffer(counts[id]),
            all: plain_buffer(if on { n } else { 0 }),
            full,
        }
    }

    /// Keeps them for the next call.
    fn keep(self) {
        INTO_BUFS.with(|b| *b.borrow_mut() = Some(self));
    }
}

/// Drops every rank's kept buffers of [`into_collective`].
#[parallelizer::task]
pub fn into_release(_p: &dyn Parallelizer, _: ()) {
    INTO_BUFS.with(|b| b.borrow_mut().take());
}

/// What [`into_collective`] measured (seconds, medians).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct IntoTimes {
    /// Ours `_into`.
    pub ours: f64,
    /// Raw rsmpi's same call on the same buffers (mpi).
    pub raw: Option<f64>,
    /// The generic call on a `Vec<f64>`, in the same job or pool.
    pub generic: f64,
}

/// Times one `_into` collective on buffers allocated once and reused
/// across iterations and across the calls of one size (what the calls are
/// for; see `IntoBufs`); on mpi also raw rsmpi's same call on the same
/// buffers, made right after ours in every iteration (`raw_into`); then,
/// in iterations of their own, the generic call on a `Vec<f64>` (main's a
/// fresh clone, untimed, as the collectives table's): its ratio to the
/// `_into` call compares calls, not jobs (in separate jobs the generic
/// `scatter` of 1e3 on `mpi:2` took 2.76× the `_into` call; in one job
/// 0.98-1.22×). Main returns the medians.
#[parallelizer::task]
pub fn into_collective(p: &dyn Parallelizer, a: IntoArgs) -> Option<IntoTimes> {
    let on = p.on_main();
    #[cfg(feature = "mpi")]
    let counts = parallelizer::chunk_sizes(a.n, p.nprocs());
    let mut bufs = IntoBufs::take(p, a.n);
    let IntoBufs {
        full,
        chunk,
        buf,
        mine,
        all,
        ..
    } = &mut bufs;
    let data = on.then_some(&full[..]);
    let (mut samples, mut raw_samples) = (Vec::new(), Vec::new());
    for i in 0..a.iters.total() {
        p.wait().expect("barrier");
        let t0 = std::time::Instant::now();
        match a.op {
            Op::Bcast => p.broadcast_into(buf).expect("broadcast_into"),
            Op::Scatter => p.scatter_into(data, mine).expect("scatter_into"),
            Op::Gather => p
                .gather_into(chunk, on.then_some(&mut *all))
                .expect("gather_into"),
            Op::ScatterGather => {
                p.scatter_into(data, mine).expect("scatter_into");
                p.gather_into(mine, on.then_some(&mut *all))
                    .expect("gather_into");
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        #[cfg(feature = "mpi")]
        let raw_dt = (p.mode() == "mpi").then(|| {
            p.wait().expect("barrier");
            let bufs = RawBufs {
                full,
                chunk,
                buf,
                mine,
                all,
                counts: &counts,
            };
            raw_into(a.op, bufs)
        });
        #[cfg(not(feature = "mpi"))]
        let raw_dt: Option<f64> = None;
        if i >= a.iters.warmup {
            samples.push(dt);
            raw_samples.extend(raw_dt);
        }
    }
    if on && matches!(a.op, Op::Gather | Op::ScatterGather) {
        assert_eq!(all.len(), a.n);
    }
    // What the generic call returned is dropped after the clock stops.
    let generic = time_with(
        a.iters,
        || {
            let main_data = on.then(|| full.to_vec());
            let mine = chunk.to_vec();
            p.wait().expect("barrier");
            (main_data, mine)
        },
        |(main_data, mine)| crate::tasks::generic_f64(p, a.op, main_data, mine, a.n),
    );
    bufs.keep();
    let raw = (!raw_samples.is_empty()).then(|| median(raw_samples));
    on.then(|| IntoTimes {
        ours: median(samples),
        raw,
        generic,
    })
}

/// The buffers of [`into_collective`], lent to [`raw_into`].
#[cfg(feature = "mpi")]
struct RawBufs<'a> {
    full: &'a [f64],
    chunk: &'a [f64],
    buf: &'a mut [f64],
    mine: &'a mut [f64],
    all: &'a mut [f64],
    counts: &'a [usize],
}

/// Raw rsmpi's `broadcast_into`, `scatter_varcount_into` and
/// `gather_varcount_into` on COMM_WORLD and the buffers ours used: the
/// `mpi_raw` baseline's calls, in our job (`mpirun` places the ranks of
/// each job differently, and the `_into` rows of separate jobs moved up to
/// 3x between two runs of the same code). Seconds.
#[cfg(feature = "mpi")]
fn raw_into(op: Op, b: RawBufs<'_>) -> f64 {
    use mpi::Count;
    use mpi::datatype::{Partition, PartitionMut};
    use mpi::traits::*;
    let world = mpi::topology::SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    let on = world.rank() == 0;
    let counts: Vec<Count> = b.counts.iter().map(|&c| c as Count).collect();
    let displs = crate::workloads::starts(&counts);
    let scatter = |mine: &mut [f64]| {
        if on {
            root.scatter_varcount_into_root(
                &Partition::new(b.full, &counts[..], &displs[..]),
                mine,
            );
        } else {
            root.scatter_varcount_into(mine);
        }
    };
    let gather = |send: &[f64], all: &mut [f64]| {
        if on {
            let mut into = PartitionMut::new(all, &counts[..], &displs[..]);
            root.gather_varcount_into_root(send, &mut into);
        } else {
            root.gather_varcount_into(send);
        }
    };
    let t0 = std::time::Instant::now();
    match op {
        Op::Bcast => root.broadcast_into(b.buf),
        Op::Scatter => scatter(b.mine),
        Op::Gather => gather(b.chunk, b.all),
        Op::ScatterGather => {
            scatter(b.mine);
            gather(b.mine, b.all);
        }
    }
    t0.elapsed().as_secs_f64()
}

/// Arguments of [`allreduce_task`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReduceArgs {
    /// f64 per rank: 1 is a scalar `allreduce(f64)`, more a `Vec<f64>`.
    pub n: usize,
    /// Iterations.
    pub iters: Iters,
}

/// Times `allreduce(value, Reduce::Sum)` of one f64 or of a vector of `n`
/// (made untimed, moved in: the call reduces in place); main returns the
/// median.
#[parallelizer::task]
pub fn allreduce_task(p: &dyn Parallelizer, a: ReduceArgs) -> Option<f64> {
    let base = filled(a.n);
    let mut samples = Vec::new();
    let mut x = p.id() as f64;
    for i in 0..a.iters.total() {
        let v = (a.n > 1).then(|| base.clone());
        p.wait().expect("barrier");
        let t0 = std::time::Instant::now();
        match v {
            None => x = p.allreduce(x, Reduce::Sum).expect("allreduce") * 0.5,
            Some(v) => {
                let sum = p.allreduce(v, Reduce::Sum).expect("allreduce");
                std::hint::black_box(sum);
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        if i >= a.iters.warmup {
            samples.push(dt);
        }
    }
    std::hint::black_box(x);
    p.on_main().then(|| median(samples))
}

/// Times `map_reduce(fine_work, data, Reduce::Sum)` inside a region (every
/// rank takes part), data made untimed; main returns the median.
#[parallelizer::task]
pub fn map_reduce_task(p: &dyn Parallelizer, a: ReduceArgs) -> Option<f64> {
    let mut samples = Vec::new();
    for i in 0..a.iters.total() {
        let data = p.on_main().then(|| f64_data(a.n));
        p.wait().expect("barrier");
        let t0 = std::time::Instant::now();
        let sum = p
            .map_reduce(fine_work, data, Reduce::Sum)
            .expect("map_reduce");
        let dt = t0.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        if i >= a.iters.warmup {
            samples.push(dt);
        }
    }
    p.on_main().then(|| median(samples))
}

fn main_result<T>(r: parallelizer::Result<Option<T>>) -> Result<T, String> {
    match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err("main returned no figure".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The `_into` collectives of `par` (entered, more than one rank), and
/// on mpi raw rsmpi's same calls in the same job: the rows the suite also
/// measures in alternated rounds with their baselines (`--mpi-par-into`).
pub fn measure_into(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    let p = par.nprocs();
    // Size by size, each size's buffers kept across its four calls.
    for &n in &plan.f64_ns {
        for op in Op::ALL {
            let iters = plan.iters_for(n * 8);
            let mut times = None;
            record(figs, k_into(op, n, p), || {
                let t = main_result(par.run(into_collective, IntoArgs { op, n, iters }))?;
                times = Some(t);
                Ok(t.ours)
            });
            if let Some(t) = times {
                figs.insert(k_into_generic(op, n, p), t.generic.into());
                if let Some(raw) = t.raw {
                    figs.insert(k_into_raw(op, n, p), raw.into());
                }
            }
        }
    }
    if let Err(e) = par.run(into_release, ()) {
        figs.insert(format!("into_release:{p}"), format!("failed: {e}").into());
    }
}

/// The data-plane figures of `par` (entered, with its rank count).
pub fn measure(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    let p = par.nprocs();
    if p > 1 {
        measure_into(par, plan, figs);
        for n in ALLREDUCE_NS {
            let iters = plan.iters_for(n * 8);
            record(figs, k_allreduce(n, p), || {
                main_result(par.run(allreduce_task, ReduceArgs { n, iters }))
            });
        }
    }
    let n = plan.fine_n;
    record(figs, k_map_reduce(p), || {
        if par.mode() == "threads" || par.mode() == "serial" {
            // Pool-style, as rayon's `par_iter().map(f).sum()` is used.
            let mut err = None;
            let t = time_with(
                plan.fine,
                || f64_data(n),
                |data| {
                    if let Err(e) = par.map_reduce(fine_work, Some(data), Reduce::Sum) {
                        err.get_or_insert(e.to_string());
                    }
                },
            );
            return err.map_or(Ok(t), Err);
        }
        let iters = plan.fine;
        main_result(par.run(map_reduce_task, ReduceArgs { n, iters }))
    });
}

/// rayon's counterparts on a pool of `p` threads: `par_iter().map(f).sum()`
/// and a `broadcast` that collects each thread's chunk of a small vector.
pub fn rayon_baselines(plan: &Plan, p: usize, figs: &mut Figures) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(p)
        .build()
        .expect("rayon pool");
    let n = plan.fine_n;
    record(figs, k_map_reduce(p), || {
        Ok(time_with(
            plan.fine,
            || f64_data(n),
            |data| pool.install(|| data.into_par_iter().map(fine_work).sum::<f64>()),
        ))
    });
    let full = f64_data(SMALL_GATHER);
    let counts = parallelizer::chunk_sizes(SMALL_GATHER, p);
    let starts = crate::workloads::starts(&counts);
    record(figs, k_gather_collect(SMALL_GATHER, p), || {
        Ok(time(plan.small, || {
            pool.broadcast(|ctx| {
                let i = ctx.index();
                full[starts[i]..starts[i] + counts[i]].to_vec()
            })
        }))
    });
}

/// The serial loop of `map_reduce`.
pub fn serial_baselines(plan: &Plan, figs: &mut Figures) {
    record(figs, k_map_reduce(1), || {
        Ok(time_with(
            plan.fine,
            || f64_data(plan.fine_n),
            |data| data.into_iter().map(fine_work).sum::<f64>(),
        ))
    });
}

type Cell = Result<f64, String>;

fn cell(c: &Cell) -> String {
    match c {
        Ok(v) => fmt_time(*v),
        Err(e) => e.lines().next().unwrap_or("").chars().take(50).collect(),
    }
}

/// `ours / base`, bold above `bold`.
fn ratio(ours: &Cell, base: &Cell, bold: f64) -> String {
    match (ours, base) {
        (Ok(o), Ok(b)) if *b > 0.0 => {
            let r = o / b;
            if r > bold {
                format!("**{r:.2}×**")
            } else {
                format!("{r:.2}×")
            }
        }
        _ => "–".into(),
    }
}

/// A baseline and ours' ratio to it, bold above `bold` (a target); "–"
/// without the baseline.
pub(crate) fn with_ratio(base: &Cell, ours: &Cell, bold: f64) -> String {
    match base {
        Ok(_) => format!("{} ({})", cell(base), ratio(ours, base, bold)),
        Err(_) => "–".into(),
    }
}

fn n_name(n: usize) -> String {
    match n {
        1 => "1".into(),
        n => {
            let e = (n as f64).log10().round() as i32;
            if 10f64.powi(e) as usize == n {
                format!("1e{e}")
            } else {
                n.to_string()
            }
        }
    }
}

/// The "Plain data" section of BENCHMARKS.md.
pub fn section(store: &Store, plan: &Plan, w: &mut String) {
    let _ = writeln!(
        w,
        "## Plain data: `_into` collectives, allreduce, map_reduce\n"
    );
    let _ = writeln!(
        w,
        "`broadcast_into`, `scatter_into` and `gather_into` of `f64` on buffers allocated once \
         with `parallelizer::plain_buffer` (huge pages from 2 MiB) and reused, timed on main \
         after an untimed barrier. Baselines in the same run: raw rsmpi `broadcast_into`, \
         `scatter_varcount_into`, `gather_varcount_into` on buffers allocated once with \
         `plain_buffer` too (mpi), mpi4py's \
         buffer API (`Bcast`/`Scatterv`/`Gatherv` into preallocated numpy arrays, which numpy \
         puts on huge pages), and for threads the copies of the collectives table. \"generic\" is \
         the same collective through `broadcast`/`scatter`/`gather` of a `Vec<f64>` (which must \
         allocate its result; main's vector a fresh clone, untimed), timed in the same job or \
         pool as ours `_into`, right after it (its figure in the collectives tables is of the \
         suite's own pass), as a ratio to `_into`; beside it on mpi, raw rsmpi's same calls \
         on the memory the generic calls get (main's vector a fresh clone, on 4 KiB pages; \
         each result a fresh `plain_buffer`, main's scatter chunk too, where ours keeps it in \
         main's vector), and the generic call's ratio to that. \"raw rsmpi in our job\" is raw \
         rsmpi's same `_into` call on COMM_WORLD and the same buffers, made right after ours in \
         every iteration of the same `mpirun` job (so at the thread level ours asks for, \
         `MPI_THREAD_MULTIPLE`): each job places its ranks anew, and the raw \
         baseline of a separate job moved up to 3× between two runs of the same code. So the \
         `_into` figures of mpi and processes, raw rsmpi's and mpi4py's are each the median of \
         {} rounds run after the rest of the suite, each round one `mpirun` job of ours, one of \
         raw rsmpi, one of mpi4py and a fresh `processes` pool, in an order that turns from \
         round to round. Targets \
         (issue 10): mpi `_into` ≤ 1.0× mpi4py and ≤ 1.1× raw rsmpi; generic ≤ 1.5× `_into`; \
         bold marks a miss.\n",
        crate::plan::COLL_REPS
    );
    let _ = writeln!(
        w,
        "| op | n | backend | ranks | ours `_into` | raw baseline (ratio) | raw rsmpi in our job (ratio) | mpi4py buffer (ratio) | generic `Vec<f64>` (ratio to `_into`) | raw rsmpi on generic's memory (generic's ratio) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for op in Op::ALL {
        for &n in &plan.f64_ns {
            for (backend, base) in [
                ("threads", "memcpy"),
                ("processes", "rawsock"),
                ("mpi", "rawmpi"),
            ] {
                for &p in &plan.ranks {
                    let ours = store.get(backend, &k_into(op, n, p));
                    let coll = crate::plan::k_coll(op.key(), "f64", n, p);
                    let raw = store.get(base, &coll);
                    let py = store.get("py:mpi4py_buffer", &coll);
                    let generic = store.get(backend, &k_into_generic(op, n, p));
                    let fresh = match backend {
                        "mpi" => with_ratio(
                            &store.get(base, &crate::plan::k_coll(op.key(), FRESH, n, p)),
                            &generic,
                            1.1,
                        ),
                        _ => "–".into(),
                    };
                    let same_job = match backend {
                        "mpi" => with_ratio(&store.get(backend, &k_into_raw(op, n, p)), &ours, 1.1),
                        _ => "–".into(),
                    };
                    let raw_bold = if backend == "mpi" { 1.1 } else { 1.5 };
                    let py_bold = if backend == "mpi" { 1.0 } else { 1.5 };
                    let _ = writeln!(
                        w,
                        "| {} | {} | {backend} | {p} | {} | {} | {same_job} | {} | {} | {fresh} |",
                        op.key(),
                        n_name(n),
                        cell(&ours),
                        with_ratio(&raw, &ours, raw_bold),
                        with_ratio(&py, &ours, py_bold),
                        match &generic {
                            Ok(_) =>
                                format!("{} ({})", cell(&generic), ratio(&generic, &ours, 1.5)),
                            Err(_) => "–".into(),
                        },
                    );
                }
            }
        }
    }
    let _ = writeln!(w);

    let _ = writeln!(
        w,
        "**allreduce** (`Reduce::Sum`) of one `f64` and of a `Vec<f64>` of 1e6 per rank (made \
         untimed and moved in: the call reduces in place). MPI: `MPI_Allreduce` with `MPI_SUM`; \
         threads and processes: one `f64` posted on the transport's board, every rank reading \
         every post; the vector by recursive doubling (on processes the pairs read each other's \
         vector with `process_vm_readv`). Baselines: raw rsmpi \
         `all_reduce_into` on preallocated buffers and mpi4py `Allreduce`. The mpi figure of one \
         `f64` and its raw baseline are medians of {} jobs each (see the thread-level section). \
         Target: mpi ≤ 1.2× raw; processes' scalar ≤ 3× the mpi figure.\n",
        crate::plan::LEVEL_REPS
    );
    let _ = writeln!(
        w,
        "| n | backend | ranks | ours | raw rsmpi (ratio) | mpi4py buffer (ratio) | ratio to mpi |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for n in ALLREDUCE_NS {
        for backend in ["threads", "processes", "mpi"] {
            for &p in &plan.ranks {
                let key = k_allreduce(n, p);
                let ours = store.get(backend, &key);
                let raw = store.get("rawmpi", &key);
                let py = store.get("py:mpi4py_buffer", &key);
                let mpi = store.get("mpi", &key);
                let _ = writeln!(
                    w,
                    "| {} | {backend} | {p} | {} | {} | {} | {} |",
                    n_name(n),
                    cell(&ours),
                    with_ratio(&raw, &ours, 1.2),
                    with_ratio(&py, &ours, 1.2),
                    if backend == "mpi" {
                        "–".into()
                    } else {
                        ratio(&ours, &mpi, 3.0)
                    },
                );
            }
        }
    }
    let _ = writeln!(w);

    let _ = writeln!(
        w,
        "**threads: a gather of 1e3 f64** inside a region (every rank sends its chunk to main) \
         against a rayon `broadcast` whose closures return each thread's chunk, collected (the \
         same values, the same thread hand-off). Target ≤ 2×.\n"
    );
    let _ = writeln!(
        w,
        "| ranks | `gather(Vec<f64>)` | `gather_into` | rayon broadcast + collect | ratio (gather) | ratio (`gather_into`) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for &p in &plan.ranks {
        let n = SMALL_GATHER;
        let g = store.get("threads", &crate::plan::k_coll("gather", "f64", n, p));
        let gi = store.get("threads", &k_into(Op::Gather, n, p));
        let r = store.get("rayon", &k_gather_collect(n, p));
        let _ = writeln!(
            w,
            "| {p} | {} | {} | {} | {} | {} |",
            cell(&g),
            cell(&gi),
            cell(&r),
            ratio(&g, &r, 2.0),
            ratio(&gi, &r, 2.0)
        );
    }
    let _ = writeln!(w);

    let _ = writeln!(
        w,
        "**map_reduce**: `par.map_reduce(fine_work, data, Reduce::Sum)` over {} f64 items (the \
         fine map, summed): pool-style on threads (each rank folds its own chunk, moved out of \
         main's vector), inside `run` on processes and mpi. Baseline: rayon \
         `data.into_par_iter().map(fine_work).sum()` on a pool of P threads. Target (threads) ≤ \
         1.1×.\n",
        plan.fine_n
    );
    let _ = writeln!(
        w,
        "| backend | ranks | ours | rayon (ratio) | serial loop |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|");
    let serial = store.get("serial_loop", &k_map_reduce(1));
    for backend in ["threads", "processes", "mpi"] {
        for &p in &plan.ranks {
            let ours = store.get(backend, &k_map_reduce(p));
            let r = store.get("rayon", &k_map_reduce(p));
            let _ = writeln!(
                w,
                "| {backend} | {p} | {} | {} | {} |",
                cell(&ours),
                with_ratio(&r, &ours, 1.1),
                cell(&serial)
            );
        }
    }
    let _ = writeln!(w);
}
