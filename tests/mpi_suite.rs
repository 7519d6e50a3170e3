//! The SPMD suite on the MPI backend: every check runs as a region on the
//! `mpi` parallelizer and is compared with what `serial` and `threads:P`
//! (P = the number of MPI ranks) give for the same function. The `shared:`
//! checks run the shared suite of `tests/common` (the functions
//! `tests/it/local_modes.rs` runs on serial and threads) with the same
//! expectations.
//!
//! A `harness = false` test target with `required-features = ["mpi"]`: its
//! `main` is the MPI program, which `.ci/mpi.sh` runs under `mpirun -n 1..4`
//! in both models (it finds the binary with `--message-format=json`):
//! ```text
//! cargo test --features mpi --test mpi_suite --no-run     # prints the binary's path
//! mpirun -n 4 target/debug/deps/mpi_suite-HASH                            # served (guard)
//! PARALLELIZER_MPI_SERVE=0 mpirun -n 4 target/debug/deps/mpi_suite-HASH   # classic SPMD
//! ```
//! Prints `N passed, M failed` on rank 0 and exits non-zero on a failure.
//! Run without `mpirun` (`cargo test --features mpi`, `cargo nextest run
//! --features mpi`) it is a one-rank MPI job; it speaks enough of libtest's
//! command line for nextest (`--list`).

use std::collections::BTreeMap;

use parallelizer::prelude::*;
use parallelizer::{Error, Op, chunk_sizes};
use serde::{Deserialize, Serialize};

type Par<'a> = &'a dyn Parallelizer;

/// Shared arrays and maps on MPI.
#[path = "mpi_suite/shared_memory.rs"]
mod shared_memory;

/// Shared arrays on a (simulated) two-node job: `mpi_suite two-nodes`.
#[path = "mpi_suite/two_nodes.rs"]
mod two_nodes;

/// The shared SPMD suite of `tests/common` (also run on serial and threads
/// by `tests/it/local_modes.rs`), run here on MPI.
mod common;

/// The shared fns, registered so that served workers can run them by name.
mod shared {
    use super::common;
    use parallelizer::Parallelizer;

    macro_rules! wrap {
        ($($name:ident($a:ty) -> $r:ty;)*) => {$(
            #[parallelizer::task]
            pub fn $name(par: &dyn Parallelizer, args: $a) -> $r {
                common::$name(par, args)
            }
        )*};
    }
    wrap! {
        chunk_lens(usize) -> Option<Vec<usize>>;
        scatter_roundtrip(u32) -> Option<Vec<u32>>;
        gather_ids(()) -> Option<Vec<(usize, String)>>;
        broadcast_struct(()) -> Option<Vec<common::Job>>;
        map_in_region(i64) -> Option<Vec<i64>>;
        map_with_in_region(i64) -> Option<Vec<i64>>;
        map_chunks_in_region(i64) -> Option<Vec<i64>>;
        starmap_in_region(i64) -> Option<Vec<(i64, i64, i64)>>;
        worker_to_worker(()) -> Option<String>;
        wait_then_gather(()) -> Option<Vec<usize>>;
        run_job(()) -> Option<usize>;
        map_applier((u8, u8)) -> Option<Vec<u32>>;
        simple_print(()) -> bool;
        pod_roundtrip(usize) -> Option<(Vec<f64>, f64)>;
    }

    #[parallelizer::task]
    pub fn square(x: i64) -> i64 {
        common::square(x)
    }
}

// ---------------------------------------------------------------- tasks

/// For each n: every rank's chunk of 0..n, gathered (the chunk table and
/// contiguity at once).
#[parallelizer::task]
fn chunk_table(par: &dyn Parallelizer, ns: Vec<usize>) -> Option<Vec<Vec<Vec<u32>>>> {
    let mut out = Vec::new();
    for n in ns {
        let data = par.on_main().then(|| (0..n as u32).collect::<Vec<_>>());
        let chunk = par.scatter(data).unwrap();
        out.push(par.gather(chunk).unwrap());
    }
    // Every rank takes part in every gather before main-only results are
    // unwrapped (a `?` inside the loop would leave main waiting).
    out.into_iter().collect()
}

#[parallelizer::task]
fn gather_order(par: &dyn Parallelizer, (): ()) -> Option<Vec<(usize, String)>> {
    par.gather((par.id(), format!("rank {}", par.id())))
        .unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    name: String,
    tags: Vec<String>,
    weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Nested {
    id: u64,
    inner: Vec<Inner>,
    table: BTreeMap<String, Vec<i32>>,
}

fn sample(i: u64) -> Nested {
    Nested {
        id: i,
        inner: (0..i % 3)
            .map(|k| Inner {
                name: format!("item {i}.{k} ✓"),
                tags: vec!["a".repeat(k as usize + 1), String::new()],
                weight: (k % 2 == 0).then_some(i as f64 / 3.0),
            })
            .collect(),
        table: [(format!("k{i}"), vec![i as i32, -1])]
            .into_iter()
            .collect(),
    }
}

/// Every rank's copy of main's broadcast struct.
#[parallelizer::task]
fn broadcast_struct(par: &dyn Parallelizer, (): ()) -> Option<Vec<Nested>> {
    let got = par.broadcast(par.on_main().then(|| sample(5))).unwrap();
    par.gather(got).unwrap()
}

/// Heap types through scatter and gather: strings and nested structs,
/// each rank transforming its chunk.
#[parallelizer::task]
fn heap_types(par: &dyn Parallelizer, n: u64) -> Option<(Vec<String>, Vec<Nested>)> {
    let strings = par.on_main().then(|| {
        (0..n)
            .map(|i| format!("s{i}-{}", "x".repeat(i as usize)))
            .collect()
    });
    let mine: Vec<String> = par.scatter(strings).unwrap();
    let mine: Vec<String> = mine.into_iter().map(|s| s.to_uppercase()).collect();
    let structs = par.on_main().then(|| (0..n).map(sample).collect());
    let theirs: Vec<Nested> = par.scatter(structs).unwrap();
    let s = par.gather(mine).unwrap();
    let t = par.gather(theirs).unwrap();
    Some((s?.concat(), t?.concat()))
}

#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
    tag: u32,
    pad: u32,
}

/// Plain data: uneven scatter-v of f64 (chunks gathered as serde to see
/// each rank's share), gather-v back, broadcast of a custom Pod struct.
type PodResult = (Vec<Vec<f64>>, Vec<f64>, Vec<Vec<Point>>);

#[parallelizer::task]
fn pod_paths(par: &dyn Parallelizer, n: usize) -> Option<PodResult> {
    let data = par
        .on_main()
        .then(|| (0..n).map(|i| i as f64 * 1.5).collect::<Vec<f64>>());
    let mine = par.scatter_pod(data).unwrap();
    let shares = par.gather(mine.clone()).unwrap();
    let doubled: Vec<f64> = mine.iter().map(|x| x * 2.0).collect();
    let back = par.gather_pod(doubled).unwrap();
    let points = par.on_main().then(|| {
        (0..7)
            .map(|i| Point {
                x: i as f64,
                y: -(i as f64),
                tag: i,
                pad: 0,
            })
            .collect::<Vec<_>>()
    });
    let got = par.broadcast_pod(points).unwrap();
    let all = par
        .gather(got.iter().map(|p| (p.x, p.y, p.tag)).collect::<Vec<_>>())
        .unwrap();
    let all = all.map(|v| {
        v.into_iter()
            .map(|ps| {
                ps.into_iter()
                    .map(|(x, y, tag)| Point { x, y, tag, pad: 0 })
                    .collect()
            })
            .collect()
    });
    Some((shares?, back?, all?))
}

#[parallelizer::task]
fn square(x: u64) -> u64 {
    x * x + 1
}

fn scaled(x: i64, k: &i64) -> i64 {
    x * k - 3
}

fn add(a: i32, b: String) -> String {
    format!("{b}{a}")
}

/// map, map_with, map_chunks and starmap inside a region.
#[allow(clippy::type_complexity)]
#[parallelizer::task]
fn maps(par: &dyn Parallelizer, n: u64) -> Option<(Vec<u64>, Vec<i64>, Vec<usize>, Vec<String>)> {
    let on = par.on_main();
    let a = par.map(square, on.then(|| (0..n).collect())).unwrap();
    let b = par
        .map_with(scaled, on.then(|| (0..n as i64).collect()), on.then_some(7))
        .unwrap();
    let c = par
        .map_chunks(
            |xs: Vec<u64>| vec![xs.len(); xs.len()],
            on.then(|| (0..n).collect()),
        )
        .unwrap();
    let d = par
        .starmap(
            add,
            on.then(|| (0..n as i32).map(|i| (i, format!("#{i}:"))).collect()),
        )
        .unwrap();
    Some((a?, b?, c?, d?))
}

/// Rank 1 sends to rank 2 (or 0 to 1 with two ranks); the receiver
/// reports what it got through a gather.
#[parallelizer::task]
fn send_receive(par: &dyn Parallelizer, (): ()) -> Option<Vec<Option<String>>> {
    let (from, to) = if par.nprocs() >= 3 { (1, 2) } else { (0, 1) };
    let mut got = None;
    if par.nprocs() >= 2 {
        if par.id() == from {
            par.send(format!("hello from {from}"), to).unwrap();
        } else if par.id() == to {
            got = Some(par.receive::<String>(from).unwrap());
        }
    }
    par.gather(got).unwrap()
}

/// A barrier, then an exchange that only works if every rank got past it.
#[parallelizer::task]
fn wait(par: &dyn Parallelizer, rounds: u32) -> Option<Vec<u32>> {
    let mut passed = 0;
    for _ in 0..rounds {
        par.wait().unwrap();
        passed += 1;
    }
    par.gather(passed).unwrap()
}

/// Hybrid map: how many distinct threads applied `f` on each rank.
#[parallelizer::task]
fn hybrid(par: &dyn Parallelizer, n: u64) -> Option<(Vec<u64>, Vec<usize>)> {
    let on = par.on_main();
    let out = par
        .map(
            |x: u64| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                (x * 3, format!("{:?}", std::thread::current().id()))
            },
            on.then(|| (0..n).collect()),
        )
        .unwrap();
    let threads = par.gather(par.threads_per_rank()).unwrap();
    let values = out.map(|v| v.into_iter().map(|(x, _)| x).collect());
    Some((values?, threads?))
}

/// An item of the hybrid dynamic map: its value, and where it ran.
#[parallelizer::task]
fn where_it_ran(x: u64) -> (u64, String) {
    std::thread::sleep(std::time::Duration::from_millis(2));
    let thread = format!("{}/{:?}", std::process::id(), std::thread::current().id());
    (x * 3, thread)
}

/// Counts the distinct threads that run `f` on this rank's chunk.
#[parallelizer::task]
fn thread_spread(par: &dyn Parallelizer, n: u64) -> Option<Vec<usize>> {
    let chunk = par
        .scatter(par.on_main().then(|| (0..n).collect::<Vec<u64>>()))
        .unwrap();
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let jobs: Vec<parallelizer::backend::Job<'_>> = chunk
        .iter()
        .map(|_| {
            let seen = &seen;
            Box::new(move || {
                std::thread::sleep(std::time::Duration::from_millis(5));
                seen.lock()
                    .unwrap()
                    .insert(format!("{:?}", std::thread::current().id()));
            }) as parallelizer::backend::Job<'_>
        })
        .collect();
    par.run_jobs(jobs);
    let distinct = seen.into_inner().unwrap().len();
    par.gather(distinct).unwrap()
}

/// Inside a task: `current()` is this rank's handle, and a parallelizer
/// built there (instead of the one passed in) runs nested regions in place.
#[parallelizer::task]
fn nested(par: &dyn Parallelizer, (): ()) -> Option<(Vec<usize>, Vec<usize>)> {
    let current = parallelizer::current().id();
    let fresh = parallelizer::from_config("mpi").unwrap();
    let inner = fresh
        .run(|q: Par, k: usize| q.gather(q.id() * k).unwrap(), 10)
        .unwrap();
    let ids = par.gather(current).unwrap();
    Some((ids?, inner?))
}

/// Larger payloads on the default limits: 32 MB of f64 broadcast, 8 MB
/// scattered and gathered back, 100k strings through serde.
#[parallelizer::task]
fn large(par: &dyn Parallelizer, n: usize) -> Option<(f64, usize, Vec<f64>, usize)> {
    let on = par.on_main();
    let big = par
        .broadcast_pod(on.then(|| (0..4 * n).map(|i| i as f64).collect::<Vec<f64>>()))
        .unwrap();
    let sum_big: f64 = big.iter().sum();
    let mine = par
        .scatter_pod(on.then(|| (0..n).map(|i| i as f64).collect::<Vec<f64>>()))
        .unwrap();
    let back = par
        .gather_pod(mine.iter().map(|x| x + 1.0).collect())
        .unwrap();
    let words = par
        .scatter(on.then(|| {
            (0..100_000)
                .map(|i| format!("w{i}"))
                .collect::<Vec<String>>()
        }))
        .unwrap();
    let lens = par
        .gather(words.iter().map(String::len).sum::<usize>())
        .unwrap();
    let sums = par.gather(sum_big).unwrap();
    Some((sums?.iter().sum(), lens?.iter().sum(), back?, big.len()))
}

/// A call's outcome as the misfit checks compare it: "ok" or the error.
fn show(r: parallelizer::Result<()>) -> String {
    match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

/// `receive_into` on main of messages from rank 1 that do not fit its
/// buffers (of 4 `i32`, and of one, shorter than the header of a long
/// message): shorter, longer, a serde value, and a message of 300 (in
/// pieces after a header under a small `max_message_bytes`, whose length
/// is then known). The receive is posted on the
/// buffer itself, so a longer message is cut by MPI (how long it was is
/// unknown); every misfit is an error and is taken, so the messages after
/// it arrive in step.
#[parallelizer::task]
fn misfit_receives(par: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
    match par.id() {
        0 => {
            let (mut four, mut one) = ([0i32; 4], [0i32; 1]);
            let mut seen = vec![
                show(par.receive_into(&mut four, 1)),
                show(par.receive_into(&mut four, 1)),
                show(par.receive_into(&mut four, 1)),
                show(par.receive_into(&mut one, 1)),
                show(par.receive_into(&mut one, 1)),
                show(par.receive_into(&mut four, 1)),
                show(par.receive_into(&mut one, 1)),
            ];
            par.receive_into(&mut four, 1).unwrap();
            par.receive_into(&mut one, 1).unwrap();
            seen.push(format!("{four:?} {one:?}"));
            Some(seen)
        }
        1 => {
            par.send_slice(&[1i32, 2], 0).unwrap();
            par.send_slice(&[1i32; 9], 0).unwrap();
            par.send(String::from("not plain"), 0).unwrap();
            par.send_slice(&[1i32; 3], 0).unwrap();
            par.send_slice(&[1i32; 5], 0).unwrap();
            // Above a `max_message_bytes` of 1000: a header, then the body.
            par.send_slice(&[1i32; 300], 0).unwrap();
            par.send_slice(&[1i32; 300], 0).unwrap();
            par.send_slice(&[5i32, 6, 7, 8], 0).unwrap();
            par.send_slice(&[9i32], 0).unwrap();
            None
        }
        _ => None,
    }
}

/// Main gathers `f64` while the workers gather 3 bytes each (a program
/// error the backend cannot see before the parts arrive): main's calls
/// fail naming the part, no rank panics or waits, and a gather of the
/// same type right after finds every rank in step. `n` bytes per worker:
/// 3 (whole parts) or 5003 (header and body).
#[parallelizer::task]
fn misfit_gathers(par: &dyn Parallelizer, n: usize) -> Option<Vec<String>> {
    let seen = if par.on_main() {
        let mut all: Vec<f64> = Vec::new();
        let into = show(par.gather_into(&[1.0f64; 2], Some(&mut all)));
        let generic = show(par.gather(vec![1.0f64; 2]).map(drop));
        vec![into, generic]
    } else {
        let bytes = vec![7u8; n];
        par.gather_into(&bytes, None).unwrap();
        par.gather(bytes).unwrap();
        Vec::new()
    };
    let ids = par.gather_pod(vec![par.id() as u32]).unwrap();
    ids.map(|ids| {
        let mut seen = seen;
        seen.push(format!("{ids:?}"));
        seen
    })
}

/// Main broadcasts `n` `f64` while the workers broadcast into bytes and
/// `u32`s (a program error): each worker's call fails naming both element
/// sizes, main's succeeds, nobody waits, and a gather right after finds
/// every rank in step.
#[parallelizer::task]
fn misfit_broadcasts(par: &dyn Parallelizer, n: usize) -> Option<Vec<String>> {
    let seen = if par.on_main() {
        let mut mine = vec![1.0f64; n];
        let into = show(par.broadcast_into(&mut mine));
        let generic = show(par.broadcast(Some(mine)).map(drop));
        format!("{into} / {generic}")
    } else {
        let into = show(par.broadcast_into(&mut vec![0u8; n]));
        let generic = show(par.broadcast::<Vec<u32>>(None).map(drop));
        format!("{into} / {generic}")
    };
    par.gather(seen).unwrap()
}

/// Rank 1 waits for a message that rank 0 never sends: with a timeout it
/// gets `Error::Timeout` instead of hanging.
#[parallelizer::task]
fn receive_timeout(par: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
    let mine = if par.id() == 1 {
        match par.receive::<u8>(0) {
            Err(Error::Timeout { op, rank, .. }) => format!("timeout {op} from {rank}"),
            other => format!("unexpected {other:?}"),
        }
    } else {
        String::new()
    };
    par.gather(mine).unwrap()
}

/// Option `verify`: rank 1 broadcasts while the others gather.
#[parallelizer::task]
fn verify_mismatch(par: &dyn Parallelizer, (): ()) -> Result<(), String> {
    if par.id() == 1 {
        par.broadcast::<u32>(None).map_err(|e| e.to_string())?;
    } else {
        par.gather(par.id()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Option `verify`: the last rank skips the gather everyone else calls.
#[parallelizer::task]
fn verify_skipped_gather(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    if par.id() == par.nprocs() - 1 {
        return None;
    }
    par.gather(par.id()).unwrap()
}

/// Option `verify`: main receives from rank 1, which never sends.
#[parallelizer::task]
fn verify_receive_from_finished(par: &dyn Parallelizer, (): ()) -> Option<u64> {
    if par.on_main() {
        return Some(par.receive::<u64>(1).unwrap());
    }
    None
}

static INIT_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

static INIT_ARG: std::sync::Mutex<Option<(String, u32)>> = std::sync::Mutex::new(None);

/// An initializer: counts its calls on this rank and keeps its arguments.
#[parallelizer::task]
fn count_init(_: &dyn Parallelizer, args: (String, u32)) {
    INIT_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    *INIT_ARG.lock().unwrap() = Some(args);
}

/// An initializer that fails on the last rank.
#[parallelizer::task]
fn refuse_on_last(par: &dyn Parallelizer, (): ()) -> Result<(), String> {
    if par.id() + 1 == par.nprocs() {
        return Err("no scratch space on the last rank".into());
    }
    Ok(())
}

/// A rank's initializer calls and the arguments of the last one.
type InitSeen = (usize, Option<(String, u32)>);

/// How often the initializer ran on each rank, and with what.
#[parallelizer::task]
fn init_calls(par: &dyn Parallelizer, (): ()) -> Option<Vec<InitSeen>> {
    let calls = INIT_CALLS.load(std::sync::atomic::Ordering::SeqCst);
    let args = INIT_ARG.lock().unwrap().clone();
    par.gather((calls, args)).unwrap()
}

/// Fails on the last rank without making anyone wait for it.
#[parallelizer::task]
fn fails_on_last(par: &dyn Parallelizer, (): ()) -> Result<usize, String> {
    if par.id() == par.nprocs() - 1 {
        return Err(format!("bad input on rank {}", par.id()));
    }
    Ok(par.id())
}

/// A chain of waits: each rank but the last receives from the next one,
/// and the last fails at once. Every other rank is released by that
/// failure (rank `r` when `r + 1` is), none finishes on its own, so the
/// failure, not a deadlock, must be the region's error.
#[parallelizer::task]
fn fails_at_the_end_of_a_chain(par: &dyn Parallelizer, (): ()) -> Result<u64, String> {
    let (id, last) = (par.id(), par.nprocs() - 1);
    if id == last {
        return Err(format!("bad input on rank {id}"));
    }
    par.receive::<u64>(id + 1).map_err(|e| e.to_string())
}

/// Panics on the last rank, also without blocking the others.
#[parallelizer::task]
fn panics_on_last(par: &dyn Parallelizer, (): ()) -> Option<usize> {
    if par.id() == par.nprocs() - 1 {
        panic!("deliberate panic on rank {}", par.id());
    }
    Some(par.id())
}

// ---------------------------------------------------------------- harness

struct Suite {
    rank: usize,
    passed: usize,
    failed: usize,
}

impl Suite {
    fn check(&mut self, name: &str, test: impl FnOnce() -> Result<(), String>) {
        match test() {
            Ok(()) => {
                self.passed += 1;
                if self.rank == 0 {
                    println!("PASS {name}");
                }
            }
            Err(why) => {
                self.failed += 1;
                if self.rank == 0 {
                    println!("FAIL {name}: {why}");
                } else {
                    eprintln!("FAIL on rank {}: {name}: {why}", self.rank);
                }
            }
        }
    }
}

fn eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        let (g, w) = (format!("{got:?}"), format!("{want:?}"));
        let cut = |s: String| {
            if s.len() > 300 {
                format!("{}...", &s[..300])
            } else {
                s
            }
        };
        Err(format!("{what}: got {} want {}", cut(g), cut(w)))
    }
}

/// Runs `task` on mpi, threads:P and serial; main's results must match
/// between mpi and threads, and `check` judges the mpi one (given the
/// serial result too).
fn compare<A, R, F>(
    mpi: &std::sync::Arc<dyn Parallelizer>,
    task: F,
    args: A,
) -> Result<(R, R, R), String>
where
    A: parallelizer::Data + Clone,
    R: Send + 'static,
    F: Fn(Par, A) -> R + Send + Sync + Copy + 'static,
{
    let threads = parallelizer::from_config(format!("threads:{}", mpi.nprocs()).as_str())
        .map_err(|e| e.to_string())?;
    let serial = parallelizer::from_config("serial").map_err(|e| e.to_string())?;
    let m = mpi
        .run(task, args.clone())
        .map_err(|e| format!("mpi: {e}"))?;
    let t = threads
        .run(task, args.clone())
        .map_err(|e| format!("threads: {e}"))?;
    let s = serial.run(task, args).map_err(|e| format!("serial: {e}"))?;
    Ok((m, t, s))
}

#[parallelizer::main]
fn main() {
    // What `cargo nextest run` asks a test binary first: the test names.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("mpi_suite: test");
        }
        return;
    }
    let par = parallelizer::from_config("mpi").expect("mpi parallelizer");
    let (p, rank) = (par.nprocs(), par.id());
    // Outside a region only served main is not in one.
    let served = !par.in_region();
    if rank == 0 {
        println!(
            "mpi_suite: {p} rank(s), {} model",
            if served { "served (guard)" } else { "SPMD" }
        );
    }
    let mut suite = Suite {
        rank,
        passed: 0,
        failed: 0,
    };
    if args.iter().any(|a| a == "two-nodes") {
        two_nodes::suite(&par, &mut suite);
        if rank == 0 {
            println!("{} passed, {} failed", suite.passed, suite.failed);
        }
        std::process::exit(i32::from(suite.failed > 0));
    }

    // Chunk table (README "Scatter and gather"; McUtils'
    // `SendRecieveParallelizer.scatter` in McUtils/Parallelizers/Parallelizers.py).
    let ns = vec![1000, 10, 2, 3, 0];
    suite.check("chunk table", || {
        let (m, t, _) = compare(&par, chunk_table, ns.clone())?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        let m = m.ok_or("no result on main")?;
        for (i, &n) in ns.iter().enumerate() {
            let sizes: Vec<usize> = m[i].iter().map(Vec::len).collect();
            eq(&format!("sizes of {n} over {p}"), sizes, chunk_sizes(n, p))?;
            eq(
                &format!("contiguous {n}"),
                m[i].concat(),
                (0..n as u32).collect(),
            )?;
        }
        let table: &[(usize, usize, &[usize])] = &[
            (1000, 4, &[250, 250, 250, 250]),
            (10, 3, &[4, 3, 3]),
            (10, 4, &[3, 3, 2, 2]),
            (2, 4, &[1, 1, 0, 0]),
            (3, 3, &[1, 1, 1]),
        ];
        for &(n, np, want) in table {
            if np == p {
                let i = ns.iter().position(|&x| x == n).unwrap();
                let sizes: Vec<usize> = m[i].iter().map(Vec::len).collect();
                eq(&format!("table {n} over {np}"), sizes.as_slice(), want)?;
            }
        }
        eq("same as threads", Some(m), t)
    });

    suite.check("gather order", || {
        let (m, t, s) = compare(&par, gather_order, ())?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        eq(
            "ranks",
            m.clone(),
            Some((0..p).map(|r| (r, format!("rank {r}"))).collect()),
        )?;
        eq("serial", s, Some(vec![(0, "rank 0".to_string())]))?;
        eq("threads", m, t)
    });

    suite.check("broadcast of a struct", || {
        let (m, t, _) = compare(&par, broadcast_struct, ())?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        eq("every rank", m.clone(), Some(vec![sample(5); p]))?;
        eq("threads", m, t)
    });

    suite.check("heap types (strings, nested structs)", || {
        let (m, t, s) = compare(&par, heap_types, 11)?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        eq("serial", m.clone(), s)?;
        eq("threads", m, t)
    });

    suite.check(
        "plain data: uneven scatter-v of f64, gather-v, Pod struct broadcast",
        || {
            let (m, t, s) = compare(&par, pod_paths, 10)?;
            if rank != 0 {
                return Ok(()); // workers only take part; main judges
            }
            let (shares, back, points) = m.clone().ok_or("no result")?;
            let data: Vec<f64> = (0..10).map(|i| i as f64 * 1.5).collect();
            let mut at = 0;
            for (r, share) in shares.iter().enumerate() {
                let n = chunk_sizes(10, p)[r];
                eq(
                    &format!("rank {r} share"),
                    share.as_slice(),
                    &data[at..at + n],
                )?;
                at += n;
            }
            eq("gather-v", back, data.iter().map(|x| x * 2.0).collect())?;
            eq("points on every rank", points.len(), p)?;
            eq("same as threads", m.clone(), t)?;
            let (s_shares, s_back, _) = s.ok_or("no serial result")?;
            eq(
                "serial",
                (shares.concat(), m.unwrap().1),
                (s_shares.concat(), s_back),
            )
        },
    );

    suite.check("map / map_with / map_chunks / starmap equal serial", || {
        let (m, t, s) = compare(&par, maps, 23)?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        let (a, b, c, d) = m.clone().ok_or("no result")?;
        let (sa, sb, _, sd) = s.ok_or("no serial result")?;
        eq("map", a, sa)?;
        eq("map_with", b, sb)?;
        eq("starmap", d, sd)?;
        let lens: Vec<usize> = chunk_sizes(23, p)
            .into_iter()
            .flat_map(|n| vec![n; n])
            .collect();
        eq("map_chunks sees each rank's chunk", c, lens)?;
        eq("threads", m, t)
    });

    suite.check("pool-style map outside a region equals serial", || {
        let data: Vec<u64> = (0..37).collect();
        let got = par
            .map(square, (rank == 0).then(|| data.clone()))
            .map_err(|e| e.to_string())?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        eq("map", got, Some(data.into_iter().map(square).collect()))
    });

    suite.check("send / receive between two ranks", || {
        let (m, t, _) = compare(&par, send_receive, ())?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        let mut want = vec![None; p];
        match p {
            1 => {}
            2 => want[1] = Some("hello from 0".to_string()),
            _ => want[2] = Some("hello from 1".to_string()),
        }
        eq("received", m.clone(), Some(want))?;
        eq("threads", m, t)
    });

    suite.check("wait", || {
        let (m, t, _) = compare(&par, wait, 5)?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        eq("all passed 5 barriers", m.clone(), Some(vec![5; p]))?;
        eq("threads", m, t)
    });

    // Messages split into many MPI calls: a 7-byte limit per call.
    shared_suite(&par, &mut suite);
    data_suite(&par, &mut suite);

    suite.check("current() and nested regions inside a task", || {
        let got = par.run(nested, ()).map_err(|e| e.to_string())?;
        if rank != 0 {
            return Ok(());
        }
        let (ids, inner) = got.ok_or("no result")?;
        eq("current ids", ids, (0..p).collect())?;
        eq("nested run", inner, (0..p).map(|r| r * 10).collect())
    });

    suite.check(
        "large payloads (32 MB broadcast, 8 MB scatter/gather, 100k strings)",
        || {
            let n = 1 << 20;
            let started = std::time::Instant::now();
            let got = par.run(large, n).map_err(|e| e.to_string())?;
            if rank != 0 {
                return Ok(());
            }
            let (sum_big, lens, back, len) = got.ok_or("no result")?;
            let want_big = (0..4 * n).map(|i| i as f64).sum::<f64>() * p as f64;
            eq("broadcast length", len, 4 * n)?;
            eq("broadcast sums", sum_big, want_big)?;
            eq("gather-v", back, (0..n).map(|i| i as f64 + 1.0).collect())?;
            let want_lens: usize = (0..100_000).map(|i| format!("w{i}").len()).sum();
            eq("strings", lens, want_lens)?;
            println!(
                "     large payloads took {:.3}s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        },
    );

    suite.check(
        "verify: mismatched calls and waits for a finished rank are errors",
        || {
            if p == 1 {
                return Ok(());
            }
            let checked = parallelizer::from_config(Config::new("mpi").option("verify", true))
                .map_err(|e| e.to_string())?;
            let t = std::time::Instant::now();
            let got = checked.try_run(verify_mismatch, ());
            let want = "rank 0 called gather #0 while rank 1 called broadcast #0 (verify)";
            match got {
                Err(Error::ContractViolation(m)) if m == want => {}
                other => return Err(format!("mismatch: {other:?}")),
            }
            let last = p - 1;
            match checked.run(verify_skipped_gather, ()) {
                Err(Error::Deadlock { waits }) => eq(
                    "waits",
                    waits,
                    (0..last)
                        .map(|rank| parallelizer::Wait {
                            rank,
                            on: last,
                            op: Op::Gather,
                            finished: true,
                        })
                        .collect(),
                )?,
                other => return Err(format!("skipped gather: {other:?}")),
            }
            match checked.run(verify_receive_from_finished, ()) {
                Err(Error::Deadlock { waits }) => eq(
                    "waits",
                    waits,
                    vec![parallelizer::Wait {
                        rank: 0,
                        on: 1,
                        op: Op::Receive,
                        finished: true,
                    }],
                )?,
                other => return Err(format!("receive from a finished rank: {other:?}")),
            }
            if t.elapsed() > std::time::Duration::from_secs(3) {
                return Err(format!("three errors took {:?}", t.elapsed()));
            }
            // The checked parallelizer still works.
            let (m, _, _) = compare(&checked, gather_order, ())?;
            if rank == 0 {
                eq("ranks", m.map(|v| v.len()), Some(p))?;
            }
            // Maps under `verify` without ULFM send rather than post
            // (`AnySource::Unbuffered`): one chunk in flight per rank.
            let posts = checked.any_source() == parallelizer::backend::AnySource::Posted;
            let ulfm = parallelizer::backend::Mpi::new(Config::new("mpi"))
                .map_err(|e| e.to_string())?
                .fault_tolerant();
            eq("posts under verify", posts, ulfm)?;
            common::maps::large_chunks_keep_input_order(&*checked)
        },
    );

    suite.check(
        "the thread level is the one PARALLELIZER_MPI_THREAD_LEVEL asks for",
        || {
            use parallelizer::backend::mpi::rsmpi::environment::Threading;
            let mpi =
                parallelizer::backend::Mpi::new(Config::new("mpi")).map_err(|e| e.to_string())?;
            let asked = std::env::var("PARALLELIZER_MPI_THREAD_LEVEL").unwrap_or_default();
            let (want, ulfm_possible) = match asked.as_str() {
                "serialized" => (Threading::Serialized, false),
                "funneled" => (Threading::Funneled, false),
                "single" => (Threading::Single, false),
                _ => (Threading::Multiple, true),
            };
            eq("threading", mpi.threading(), want)?;
            // Below MPI_THREAD_MULTIPLE a failure ends the job, with ULFM or not.
            if !ulfm_possible && mpi.fault_tolerant() {
                return Err("fault tolerant below MPI_THREAD_MULTIPLE".into());
            }
            Ok(())
        },
    );

    suite.check("receive honours the timeout", || {
        let timed = parallelizer::from_config(
            Config::new("mpi").timeout(std::time::Duration::from_millis(200)),
        )
        .map_err(|e| e.to_string())?;
        let fault_tolerant = parallelizer::backend::Mpi::new(Config::new("mpi"))
            .map_err(|e| e.to_string())?
            .fault_tolerant();
        let got = timed.run(receive_timeout, ());
        if p > 1 && fault_tolerant {
            // Under ULFM the deadline ends the whole run (every rank was
            // blocked in MPI then, so none was late: the lowest is named).
            return match got {
                Err(Error::Timeout { op: Op::Run, .. }) => Ok(()),
                other => Err(format!("expected the run's Timeout, got {other:?}")),
            };
        }
        // Without ULFM the receive gives up at the run's deadline.
        let got = got.map_err(|e| e.to_string())?;
        if rank != 0 {
            return Ok(());
        }
        let mut want = vec![String::new(); p];
        if p > 1 {
            want[1] = "timeout receive from 0".into();
        }
        eq("rank 1", got, Some(want))
    });

    suite.check(
        "collectives outside a region: SPMD pairs them, served main refuses",
        || {
            let got = par.broadcast((rank == 0).then_some(7u32));
            if served {
                match got {
                    Err(Error::ContractViolation(_)) => Ok(()),
                    other => Err(format!("expected ContractViolation, got {other:?}")),
                }
            } else {
                eq("broadcast", got.map_err(|e| e.to_string())?, 7)
            }
        },
    );

    suite.check(
        "initializer with arguments: once per rank (main too) at enter; its failure fails enter",
        || {
            let config = Config::new("mpi")
                .initializer_with("mpi_suite::count_init", ("scratch".to_string(), 7u32))
                .map_err(|e| e.to_string())?;
            let init = parallelizer::from_config(config).map_err(|e| e.to_string())?;
            let counts = {
                let _entered = init.enter().map_err(|e| e.to_string())?;
                init.run(init_calls, ()).map_err(|e| e.to_string())?;
                init.run(init_calls, ()).map_err(|e| e.to_string())?
            };
            let refusing = parallelizer::from_config(
                Config::new("mpi").initializer("mpi_suite::refuse_on_last"),
            )
            .map_err(|e| e.to_string())?;
            let refused = refusing.enter().map(drop);
            if rank != 0 {
                return Ok(());
            }
            let want = (1, Some(("scratch".to_string(), 7)));
            eq("initializer calls", counts, Some(vec![want; p]))?;
            match refused {
                Err(Error::TaskFailed { rank, message })
                    if rank == p - 1 && message.contains("scratch") =>
                {
                    Ok(())
                }
                other => Err(format!("expected the initializer's failure, got {other:?}")),
            }
        },
    );

    let tiny = parallelizer::from_config(Config::new("mpi").option("max_message_bytes", 7))
        .expect("mpi with a tiny message limit");
    suite.check(
        "tiny max_message_bytes: every path split into rounds",
        || {
            let e = |e: Error| e.to_string();
            let heap = tiny.run(heap_types, 11).map_err(e)?;
            let reference = par.run(heap_types, 11).map_err(e)?;
            let pods = tiny.run(pod_paths, 10).map_err(e)?;
            let pods_ref = par.run(pod_paths, 10).map_err(e)?;
            let bc = tiny.run(broadcast_struct, ()).map_err(e)?;
            let sr = tiny.run(send_receive, ()).map_err(e)?;
            let sr_ref = par.run(send_receive, ()).map_err(e)?;
            if rank != 0 {
                return Ok(()); // workers only take part; main judges
            }
            eq("heap types", heap, reference)?;
            eq("pod", pods, pods_ref)?;
            eq("broadcast", bc, Some(vec![sample(5); p]))?;
            eq("send/receive", sr, sr_ref)
        },
    );

    let hybrid_par = parallelizer::from_config(Config::new("mpi").option("threads_per_rank", 3))
        .expect("hybrid mpi");
    suite.check("hybrid: threads_per_rank = 3", || {
        let got = hybrid_par.run(hybrid, 40).map_err(|e| e.to_string())?;
        let spread = hybrid_par
            .run(thread_spread, 40)
            .map_err(|e| e.to_string())?;
        let plain = par.run(thread_spread, 40).map_err(|e| e.to_string())?;
        if rank != 0 {
            return Ok(()); // workers only take part; main judges
        }
        let (values, threads) = got.ok_or("no result")?;
        eq("map result", values, (0..40).map(|x| x * 3).collect())?;
        eq("threads per rank", threads, vec![3; p])?;
        let spread = spread.ok_or("no result")?;
        if spread.iter().any(|&n| n < 2) {
            return Err(format!("expected several threads per rank, saw {spread:?}"));
        }
        eq("without the option, one thread", plain, Some(vec![1; p]))
    });

    suite.check(
        "hybrid: chunks handed out dynamically are split over each rank's threads",
        || {
            let data = (rank == 0).then(|| (0..60).collect::<Vec<u64>>());
            let got = hybrid_par
                .mapper()
                .chunksize(6)
                .map(where_it_ran, data)
                .map_err(|e| e.to_string())?;
            if rank != 0 {
                return Ok(());
            }
            let got = got.ok_or("no result")?;
            let values: Vec<u64> = got.iter().map(|(x, _)| *x).collect();
            eq(
                "values in input order",
                values,
                (0..60).map(|x| x * 3).collect(),
            )?;
            let threads: std::collections::BTreeSet<&String> = got.iter().map(|(_, t)| t).collect();
            if threads.len() < 2 * p {
                return Err(format!(
                    "{} threads ran the map on {p} ranks of 3 threads",
                    threads.len()
                ));
            }
            Ok(())
        },
    );

    suite.check("an Err on the last rank reaches main", || {
        let err = par.try_run(fails_on_last, ()).err().ok_or("no error")?;
        match err {
            Error::TaskFailed { rank, message }
                if rank == p - 1 && message.contains("bad input") =>
            {
                Ok(())
            }
            other => Err(format!("unexpected {other}")),
        }
    });

    if p > 2 {
        suite.check(
            "an Err at the end of a chain of waits reaches main (ULFM; verify without)",
            || {
                // Without ULFM and without `verify` the blocked ranks end
                // the job (README, "When something fails").
                let fault_tolerant = parallelizer::backend::Mpi::new(Config::new("mpi"))
                    .map_err(|e| e.to_string())?
                    .fault_tolerant();
                let modes: &[bool] = if fault_tolerant {
                    &[false, true]
                } else {
                    &[true]
                };
                for &verify in modes {
                    let config = Config::new("mpi").option("verify", verify);
                    let checked = parallelizer::from_config(config).map_err(|e| e.to_string())?;
                    let err = checked
                        .try_run(fails_at_the_end_of_a_chain, ())
                        .err()
                        .ok_or("no error")?;
                    match err {
                        Error::TaskFailed { rank, message }
                            if rank == p - 1 && message.contains("bad input") => {}
                        other => return Err(format!("verify {verify}: unexpected {other}")),
                    }
                }
                Ok(())
            },
        );
    }

    if p > 1 {
        suite.check(
            "a panic on the last rank reaches main when nobody waits for it",
            || {
                let err = par.run(panics_on_last, ()).err().ok_or("no error")?;
                match err {
                    Error::WorkerPanicked { rank, message }
                        if rank == p - 1 && message.contains("deliberate panic") =>
                    {
                        Ok(())
                    }
                    other => Err(format!("unexpected {other}")),
                }
            },
        );
    }

    suite.check(
        "closures: SPMD runs them everywhere, served needs a registered task",
        || {
            let got = par.run(|q: Par, x: usize| q.gather(q.id() * x).unwrap(), 10);
            if served {
                match got {
                    Err(Error::TaskNotRegistered { .. }) => Ok(()),
                    other => Err(format!("expected TaskNotRegistered, got {other:?}")),
                }
            } else {
                let got = got.map_err(|e| e.to_string())?;
                let want = (rank == 0).then(|| (0..p).map(|r| r * 10).collect::<Vec<_>>());
                eq("gathered", got, want)
            }
        },
    );

    groups_and_parity(&par, served, &mut suite);

    suite.check(
        "nprocs must match the launcher",
        || match parallelizer::from_config(format!("mpi:{}", p + 1).as_str()) {
            Err(Error::Config(m)) if m.contains("mpirun") => Ok(()),
            other => Err(format!(
                "expected a Config error, got {:?}",
                other.map(|p| p.nprocs())
            )),
        },
    );

    shared_memory::suite(&par, &mut suite);
    if rank == 0 {
        println!("{} passed, {} failed", suite.passed, suite.failed);
    }
    std::process::exit(i32::from(suite.failed > 0));
}

/// Groups (real communicators), `apply`, per-rank arguments and
/// `is_active()`: the checks of `tests/common/groups.rs` on MPI.
fn groups_and_parity(par: &std::sync::Arc<dyn Parallelizer>, served: bool, suite: &mut Suite) {
    use common::{
        active_everywhere, chunk_lens, expected_split, expected_view, group_panics_on_last,
        group_view, split_parity, with_main_args,
    };
    let (p, rank) = (par.nprocs(), par.id());
    let e = |e: Error| e.to_string();
    // McUtils `comm=`: main and the last rank, or the first three of four.
    let members: Vec<usize> = match p {
        1 => vec![0],
        2 => vec![0, 1],
        3 => vec![0, 2],
        _ => (0..p - 1).collect(),
    };
    suite.check(
        "subgroup: every collective among its members, renumbered",
        || {
            match par.subgroup(&members) {
                // Served main: a parallelizer whose regions the others sit out.
                Ok(g) if served => {
                    eq("size", (g.id(), g.nprocs()), (0, members.len()))?;
                    let got = g.run(group_view, 10).map_err(e)?;
                    eq("view", got, Some(expected_view(&members, 10)))?;
                    let nested = g.subgroup(&[0, members.len() - 1]).map_err(e)?;
                    let world = [0, members[members.len() - 1]];
                    let world = if members.len() == 1 {
                        &world[..1]
                    } else {
                        &world[..]
                    };
                    eq(
                        "nested",
                        nested.run(group_view, 3).map_err(e)?,
                        Some(expected_view(world, 3)),
                    )?;
                    if members.len() > 1 {
                        match g.run(group_panics_on_last, ()) {
                            Err(Error::WorkerPanicked { rank, .. })
                                if rank == members.len() - 1 => {}
                            other => {
                                return Err(format!(
                                    "expected the last member's panic, got {other:?}"
                                ));
                            }
                        }
                    }
                    eq(
                        "after a failure",
                        g.run(group_view, 4).map_err(e)?,
                        Some(expected_view(&members, 4)),
                    )
                }
                // SPMD: the members' handles, on a communicator of their own.
                Ok(g) => {
                    let got = g.run(group_view, 10).map_err(e)?;
                    let want = (rank == 0).then(|| expected_view(&members, 10));
                    eq("view", got, want)
                }
                Err(Error::ContractViolation(_)) if !served && !members.contains(&rank) => Ok(()),
                Err(other) => Err(other.to_string()),
            }
        },
    );
    suite.check(
        "split: MPI_Comm_split semantics, nested, interleaved",
        || {
            let got = par.run(split_parity, ()).map_err(e)?;
            if rank != 0 {
                return Ok(());
            }
            eq("split", got, Some(expected_split(p)))
        },
    );
    suite.check(
        "apply needs enter; run_with; is_active on every rank",
        || {
            let fresh = parallelizer::from_config("mpi").map_err(e)?;
            let refused = fresh.apply(chunk_lens, 10);
            let applied = {
                let _entered = fresh.enter().map_err(e)?;
                fresh.apply(chunk_lens, 10).map_err(e)?
            };
            let data: Vec<u64> = (1..=10).collect();
            let with = par.run_with(with_main_args, 3, data).map_err(e)?;
            let active = par.run(active_everywhere, ()).map_err(e)?;
            if rank != 0 {
                return Ok(());
            }
            match refused {
                Err(Error::ContractViolation(m)) if m.contains("enter") => {}
                other => return Err(format!("apply outside enter: {:?}", other.map(|_| ()))),
            }
            eq("apply", applied, Some(chunk_sizes(10, p)))?;
            let mut mains = vec![false; p];
            mains[0] = true;
            eq("run_with", with, Some((165, mains)))?;
            eq("is_active", active, Some(vec![true; p]))
        },
    );
}

/// The shared suite's checks (as in `tests/it/local_modes.rs`) on `par`.
fn shared_suite(par: &std::sync::Arc<dyn Parallelizer>, suite: &mut Suite) {
    let (p, rank) = (par.nprocs(), par.id());
    let serial = parallelizer::from_config("serial").expect("serial");
    fn run<T>(what: &str, r: parallelizer::Result<T>) -> Result<T, String> {
        r.map_err(|e| format!("{what}: {e}"))
    }

    suite.check("shared: chunk table", || {
        let mut got = Vec::new();
        for (items, ranks, sizes) in common::chunk_table() {
            if ranks == p {
                got.push((
                    items,
                    run("run", par.run(shared::chunk_lens, items))?,
                    sizes,
                ));
            }
        }
        for (items, got, sizes) in got {
            eq(
                &format!("{items} over {p}"),
                got,
                (rank == 0).then_some(sizes),
            )?;
        }
        Ok(())
    });

    suite.check(
        "shared: scatter then gather returns the data in order",
        || {
            for n in [0, 1, 2, 3, 10, 1000] {
                let got = run("run", par.run(shared::scatter_roundtrip, n))?;
                eq(
                    &format!("n={n}"),
                    got,
                    (rank == 0).then(|| (0..n).collect()),
                )?;
            }
            Ok(())
        },
    );

    suite.check("shared: gather is ordered main first", || {
        let got = run("run", par.run(shared::gather_ids, ()))?;
        let want = (0..p).map(|i| (i, format!("rank-{i}"))).collect();
        eq("ids", got, (rank == 0).then_some(want))
    });

    suite.check("shared: broadcast of a struct reaches every rank", || {
        let got = run("run", par.run(shared::broadcast_struct, ()))?;
        eq(
            "jobs",
            got,
            (rank == 0).then(|| vec![common::sample_job(); p]),
        )
    });

    suite.check("shared: maps equal serial in input order", || {
        for n in [0i64, 1, 5, 37] {
            let got = (
                run("map", par.run(shared::map_in_region, n))?,
                run("map_with", par.run(shared::map_with_in_region, n))?,
                run("map_chunks", par.run(shared::map_chunks_in_region, n))?,
                run("starmap", par.run(shared::starmap_in_region, n))?,
            );
            if rank == 0 {
                let want = (
                    run("serial", serial.run(common::map_in_region, n))?,
                    run("serial", serial.run(common::map_with_in_region, n))?,
                    run("serial", serial.run(common::map_chunks_in_region, n))?,
                    run("serial", serial.run(common::starmap_in_region, n))?,
                );
                eq(&format!("n={n}"), got, want)?;
            }
        }
        Ok(())
    });

    suite.check("shared: pool-style map outside a region", || {
        let got = run(
            "map",
            par.map(shared::square, (rank == 0).then(|| (0..100).collect())),
        )?;
        eq(
            "map",
            got,
            (rank == 0).then(|| (0..100).map(common::square).collect()),
        )
    });

    suite.check("shared: send and receive between workers", || {
        let got = run("run", par.run(shared::worker_to_worker, ()))?;
        let want = match p {
            1 => "solo".to_string(),
            2 => "hello from 1 to 0".to_string(),
            _ => format!("hello from 1 to {}", p - 1),
        };
        eq("message", got, (rank == 0 || p == 1).then_some(want))
    });

    suite.check("shared: wait is a barrier", || {
        let got = run("run", par.run(shared::wait_then_gather, ()))?;
        eq("ids", got, (rank == 0).then(|| (0..p).collect()))
    });

    suite.check("shared: plain data paths match serial", || {
        let got = run("run", par.run(shared::pod_roundtrip, 10))?;
        if rank != 0 {
            return eq("worker", got, None);
        }
        let want = run("serial", serial.run(common::pod_roundtrip, 10))?;
        let (got, want) = (got.ok_or("no result")?, want.ok_or("no serial result")?);
        eq("scatter-gather", got.0, want.0)?;
        eq("broadcast sums", got.1, 1.5 * p as f64)
    });

    suite.check("shared: McUtils T1, T2, T3, T5, T7", || {
        let t1 = run("T1", par.run(shared::run_job, ()))?;
        let t2 = run("T2", par.run(shared::map_applier, (9, 6)))?;
        let t3_empty = run("T3", par.run(shared::map_applier, (3, 9)))?;
        let t3_small = run("T3", par.run(shared::map_applier, (4, 2)))?;
        let t5 = run("T5", par.run(shared::chunk_lens, 1000))?;
        let t7 = run("T7", par.run(shared::simple_print, ()))?;
        eq("T7 print", t7, true)?;
        if rank != 0 {
            return Ok(());
        }
        eq("T1", t1, Some(1000))?;
        let want = run("serial", serial.run(common::map_applier, (9, 6)))?;
        eq("T2 length", t2.as_ref().map(Vec::len), Some(84 * 720))?;
        eq("T2", t2, want)?;
        eq("T3 empty", t3_empty, Some(vec![]))?;
        let small = run("serial", serial.run(common::map_applier, (4, 2)))?;
        eq("T3 small", t3_small, small)?;
        let t5 = t5.ok_or("no T5 result")?;
        eq("T5 one length per rank", t5.len(), p)?;
        eq("T5 sum", t5.iter().sum::<usize>(), 1000)
    });

    // ---- The maps suite of tests/common/maps.rs: pool-style on served
    // main, every rank calling under SPMD.
    suite.check("maps: every form and schedule keep input order", || {
        common::maps::every_form_keeps_input_order(&**par)
    });
    suite.check("maps: chunks past the eager limit keep input order", || {
        common::maps::large_chunks_keep_input_order(&**par)?;
        // Bodies in several posted pieces: none may be a blocking send, or
        // main queueing a chunk and a worker sending its result would wait
        // for each other.
        let pieces =
            parallelizer::from_config(Config::new("mpi").option("max_message_bytes", 6000))
                .map_err(|e| e.to_string())?;
        common::maps::large_chunks_keep_input_order(&*pieces)
    });
    suite.check("maps: a dynamic schedule inside a region", || {
        let got = run("run", par.run(common::maps::dynamic_in_region, 23))?;
        eq(
            "map",
            got,
            (rank == 0).then(|| (0..23).map(|x| x * x + 2).collect()),
        )
    });
    suite.check("maps: results per rank", || {
        common::maps::results_per_rank(&**par)
    });
    suite.check("maps: chunksize 0 is an error", || {
        common::maps::chunksize_zero_is_an_error(&**par)
    });
    suite.check("maps: a progress report per chunk, from every rank", || {
        common::maps::progress_reports_every_chunk(&**par, Some(10))
    });
    suite.check(
        "maps: items that turn expensive in main's chunk keep order and progress",
        || common::maps::slow_items_keep_order_and_progress(&**par, false),
    );
    // A group's ranks receive from whichever member answers first on the
    // group's own communicator: main and the last rank.
    suite.check(
        "maps: chunks of one to whichever member of a subgroup",
        || {
            let members = if p == 1 { vec![0] } else { vec![0, p - 1] };
            let g = match par.subgroup(&members) {
                Ok(g) => g,
                Err(Error::ContractViolation(_)) if !members.contains(&rank) => return Ok(()),
                Err(other) => return Err(other.to_string()),
            };
            let data = (g.on_main()).then(|| (0..30).collect::<Vec<u64>>());
            let got = g.mapper().chunksize(1).map(common::maps::jitter, data);
            let want = (g.on_main()).then(|| (0..30).map(|x| x * x + 1).collect());
            eq("map", got.map_err(|e| e.to_string())?, want)
        },
    );
}

/// The plain-data suite (`tests/common/data.rs`, as `data_suite!` runs it
/// on serial, threads and processes) on `par`.
fn data_suite(par: &std::sync::Arc<dyn Parallelizer>, suite: &mut Suite) {
    use common::data::*;
    let (p, rank) = (par.nprocs(), par.id());
    let on = rank == 0;
    fn run<T>(what: &str, r: parallelizer::Result<T>) -> Result<T, String> {
        r.map_err(|e| format!("{what}: {e}"))
    }

    suite.check(
        "data: _into calls on even, uneven, empty and large buffers",
        || {
            // 512 * p and 513 * p: every part 4096 bytes, the largest sent
            // whole (`backend/mpi/part.rs`), or 4104, the smallest split.
            for n in [0, 1, 3, 10, 512 * p, 513 * p, 100_000] {
                let got = run("run", par.run(into_calls, n))?;
                eq(&format!("n={n}"), got, on.then(|| into_expected(n, p)))?;
            }
            Ok(())
        },
    );

    suite.check(
        "data: every send form pairs with every receive form",
        || {
            // 512 f64 are the longest message sent whole (4 KiB), 513 the
            // shortest after a header.
            for n in [5, 512, 513, 100_000] {
                let got = run("run", par.run(p2p_forms, n))?;
                let want = (on || p == 1).then(|| vec![0.0; 6]);
                eq(&format!("n={n}"), got, want)?;
            }
            Ok(())
        },
    );

    suite.check("data: generic calls on plain vectors equal serial", || {
        let serial = parallelizer::from_config("serial").expect("serial");
        // Parts on either side of the largest sent whole, 4 KiB: the cells
        // gathered (16 bytes each: 256 and 257) and the bytes scattered.
        for n in [0, 7, 256, 257, 4096 * p, 4097 * p, 20_000] {
            let got = run("run", par.run(generic_plain, n))?;
            if !on {
                eq("worker", got, None)?;
                continue;
            }
            let (got, want) = (
                got.ok_or("no result")?,
                run("serial", serial.run(generic_plain, n))?.ok_or("no serial result")?,
            );
            eq("cells", got.0, vec![want.0[0].clone(); p])?;
            eq("bytes", got.1, want.1)?;
            eq(
                "shorts",
                got.2,
                (0..p).map(|r| vec![r as u16; r + 1]).collect(),
            )?;
            eq("broadcast_into with broadcast", got.3, vec![6.0; p])?;
        }
        Ok(())
    });

    suite.check(
        "data: every reduction op (native), closures in rank order",
        || {
            let got = run("run", par.run(reductions, ()))?;
            eq("reductions", got, on.then(|| reductions_expected(p)))
        },
    );

    suite.check(
        "data: wrong buffer lengths are errors naming both lengths",
        || {
            let got = run("run", par.run(wrong_lengths, ()))?;
            eq("outcomes", got, on.then(|| wrong_lengths_expected(p)))
        },
    );

    if p > 1 {
        suite.check(
            "data: receive_into of a message that does not fit is an error, and it is taken",
            || {
                let longer = |n: usize| {
                    format!("receive: rank 1 sent more than the {n} elements the buffer of rank 0 holds")
                };
                let shorter = |n: usize, needs: usize| {
                    format!("receive: the buffer of rank 0 holds {n} elements but the call needs {needs}")
                };
                let want = |split: bool| {
                    let misfit = |n| if split { shorter(n, 300) } else { longer(n) };
                    vec![
                        shorter(4, 2),
                        longer(4),
                        "codec error: expected plain data alloc::vec::Vec<i32> but rank 1 sent a \
                         serde value"
                            .into(),
                        shorter(1, 3),
                        longer(1),
                        misfit(4),
                        misfit(1),
                        "[5, 6, 7, 8] [9]".into(),
                    ]
                };
                let got = run("run", par.run(misfit_receives, ()))?;
                eq("outcomes", got, on.then(|| want(false)))?;
                let small = Config::new("mpi").option("max_message_bytes", "1000");
                let small = run("from_config", parallelizer::from_config(small))?;
                let got = run("run", small.run(misfit_receives, ()))?;
                eq("outcomes (in pieces)", got, on.then(|| want(true)))
            },
        );
        suite.check(
            "data: a gather whose parts are not whole elements is an error on main, no panic",
            || {
                for n in [3, 5003] {
                    let misfit = format!(
                        "protocol error: a part of {n} bytes from rank 1 is not whole f64 (every \
                         rank must pass the same element type)"
                    );
                    let want = vec![
                        misfit.clone(),
                        misfit,
                        format!("{:?}", (0..p as u32).collect::<Vec<_>>()),
                    ];
                    let got = run("run", par.run(misfit_gathers, n))?;
                    eq(&format!("n={n}"), got, on.then_some(want))?;
                }
                Ok(())
            },
        );
        suite.check(
            "data: a broadcast into elements of another size is an error on the workers",
            || {
                let mismatch = |vec: &str, size: usize| {
                    format!(
                        "codec error: type mismatch: expected plain data alloc::vec::Vec<{vec}> \
                         ({size}-byte elements) but rank 0 broadcast 8-byte elements"
                    )
                };
                let worker = format!("{} / {}", mismatch("u8", 1), mismatch("u32", 4));
                let want: Vec<String> = (0..p)
                    .map(|r| {
                        if r == 0 {
                            "ok / ok".to_string()
                        } else {
                            worker.clone()
                        }
                    })
                    .collect();
                // In pieces too (a `max_message_bytes` of 1000): the
                // workers take main's bytes in main's pieces.
                let small = Config::new("mpi").option("max_message_bytes", "1000");
                let small = run("from_config", parallelizer::from_config(small))?;
                for n in [0, 3, 5003] {
                    let got = run("run", par.run(misfit_broadcasts, n))?;
                    eq(&format!("n={n}"), got, on.then(|| want.clone()))?;
                    let got = run("run", small.run(misfit_broadcasts, n))?;
                    eq(&format!("n={n}, in pieces"), got, on.then(|| want.clone()))?;
                }
                Ok(())
            },
        );
    }

    suite.check(
        "data: a broadcast of 40 MiB arrives whole; a wrong length is an error",
        || {
            let n = (40 << 20) / 8 + 3;
            let got = run("run", par.run(large_broadcast, n))?;
            eq("outcomes", got, on.then(|| large_broadcast_expected(n, p)))
        },
    );

    suite.check(
        "data: calls above max_message_bytes travel in pieces",
        || {
            let small = Config::new("mpi").option("max_message_bytes", "1000");
            let small = run("from_config", parallelizer::from_config(small))?;
            for n in [10, 5000] {
                let got = run("into", small.run(into_calls, n))?;
                eq(&format!("into n={n}"), got, on.then(|| into_expected(n, p)))?;
                let got = run("p2p", small.run(p2p_forms, n))?;
                eq(
                    &format!("p2p n={n}"),
                    got,
                    (on || p == 1).then(|| vec![0.0; 6]),
                )?;
            }
            let got = run("reductions", small.run(reductions, ()))?;
            eq("reductions", got, on.then(|| reductions_expected(p)))
        },
    );

    suite.check("data: the calls inside split groups", || {
        for n in [0, 5, 100_000] {
            let got = run("run", par.run(data_in_split_groups, n))?;
            let want = on.then(|| data_in_split_groups_expected(n, p));
            eq(&format!("n={n}"), got, want)?;
        }
        Ok(())
    });

    suite.check(
        "data: the calls in a subgroup of main and the last rank",
        || {
            let members = subgroup_members(p);
            let q = members.len();
            // Served: a parallelizer on main; SPMD: the members' handles (a
            // non-member's call is an error).
            let g = match par.subgroup(&members) {
                Ok(g) => g,
                Err(Error::ContractViolation(_)) if !members.contains(&rank) => return Ok(()),
                Err(other) => return Err(other.to_string()),
            };
            for n in [3, 100_000] {
                let got = run("into", g.run(into_calls, n))?;
                eq(&format!("into n={n}"), got, on.then(|| into_expected(n, q)))?;
            }
            let got = run("reductions", g.run(reductions, ()))?;
            eq("reductions", got, on.then(|| reductions_expected(q)))?;
            let got = run("wrong lengths", g.run(wrong_lengths, ()))?;
            eq("wrong lengths", got, on.then(|| wrong_lengths_expected(q)))
        },
    );

    suite.check("data: region arguments may be plain vectors", || {
        let got = run("run", par.run(plain_args, vec![1.5, 2.5, 4.0]))?;
        eq("sums", got, on.then(|| vec![8.0; p]))
    });

    suite.check(
        "data: map_reduce of a #[task] fn on main (served: pool-style by name)",
        || {
            for n in [0u64, 1, 1000] {
                let data = on.then(|| (0..n).collect::<Vec<u64>>());
                let got = run(
                    "sum",
                    par.map_reduce(cube, data.clone(), parallelizer::Reduce::Sum),
                )?;
                let want = map_reduce_expected(n).0.filter(|_| on);
                eq(&format!("sum n={n}"), got, want)?;
                let got = run(
                    "closure",
                    par.map_reduce(cube, data, |a: u64, b: u64| a + b),
                )?;
                eq(&format!("closure n={n}"), got, want)?;
            }
            Ok(())
        },
    );

    suite.check("data: map_reduce in a region equals serial", || {
        for n in [0, 1, 5, 1000] {
            let got = run("run", par.run(map_reduce_in_region, n))?;
            eq(&format!("n={n}"), got, on.then(|| map_reduce_expected(n)))?;
        }
        Ok(())
    });
}
