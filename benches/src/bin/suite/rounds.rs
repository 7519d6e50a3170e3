//! Rows measured again after the rest of the suite, in alternated rounds:
//! each round measures every source of the rows once, each in a process of
//! its own (one `mpirun` job for an MPI source, a fresh pool in a child
//! process of this one for the others), in an order that turns from round
//! to round, and each figure is the median of the rounds' and replaces the
//! one-pass figure under the same key. A process of its own, as an MPI job
//! or mpi4py's has: in the suite's own process, after its other rows, the
//! `broadcast_into` of 1e6 on `processes:2` took 930 µs where a fresh
//! process took 401-546 µs (the cause is not pinned down: raising glibc's
//! mmap threshold first did not slow the fresh one).
//!
//! - the `_into` collectives of mpi and processes beside raw rsmpi's and
//!   mpi4py's buffer calls ([`COLL_REPS`] rounds): one job per source
//!   compared placements, not calls; the same code's `scatter_into` of 1e3
//!   `f64` on `mpi:2` took 0.77 µs in one job and 2.2 µs in the next (raw
//!   rsmpi's same call 0.66 against 2.1 µs), with where `mpirun` and the VM
//!   put the job's ranks;
//! - the pool-style fine and McUtils maps on threads, processes and mpi
//!   beside rayon's ([`MAP_REPS`] rounds): the pool-style fine map on
//!   `threads:4` took 1.16× rayon in one report and 1.62× in the next with
//!   the same code.

use std::path::Path;

use parallelizer_bench::data;
use parallelizer_bench::measure::Iters;
use parallelizer_bench::ours;
use parallelizer_bench::plan::{self, COLL_REPS, Figures, MAP_REPS, Plan, arg_value};
use parallelizer_bench::report::Store;

use super::{median_figures, mpi_job, mpi_limit, mpirun, python_figures, run_bounded};

/// The suite's flag for a job of ours in an `_into` round.
pub(super) const INTO_FLAG: &str = "--mpi-par-into";
/// The suite's flag for a job of ours in a maps round.
pub(super) const MAPS_FLAG: &str = "--mpi-par-maps";
/// The suite's flag for a child process measuring one source of a round
/// on a fresh pool: `--round into|maps BACKEND P --plan PLAN --out FILE`.
pub(super) const ROUND_FLAG: &str = "--round";

/// Where a round's helpers are.
pub(super) struct Paths<'a> {
    /// The plan the helper processes read.
    pub plan: &'a Path,
    /// Where they write their figures.
    pub results: &'a Path,
    /// The venv's interpreter (no mpi4py rounds without it).
    pub python: Option<&'a Path>,
    /// `benches/python/bench.py`.
    pub script: &'a Path,
}

/// What a set of rounds measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// The `_into` collectives and their baselines.
    Into,
    /// The pool-style fine and coarse maps and rayon's.
    Maps,
}

impl Rows {
    /// The sources, in the order of the first round.
    fn sources(self) -> &'static [&'static str] {
        match self {
            Rows::Into => &["mpi", "rawmpi", "py:mpi4py_buffer", "processes"],
            Rows::Maps => &["mpi", "rayon", "processes", "threads"],
        }
    }

    fn rounds(self) -> usize {
        match self {
            Rows::Into => COLL_REPS,
            Rows::Maps => MAP_REPS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Rows::Into => "_into collectives",
            Rows::Maps => "pool-style fine and coarse maps",
        }
    }

    /// Its word on a child's command line.
    fn key(self) -> &'static str {
        match self {
            Rows::Into => "into",
            Rows::Maps => "maps",
        }
    }
}

/// Runs the rounds of both kinds of rows for each rank count of the plan
/// and puts the medians into `store`, for the sources the suite's pass
/// measured (a source it has no figures of is left out).
pub(super) fn run(store: &mut Store, plan: &Plan, paths: &Paths<'_>, log: &dyn Fn(&str)) {
    for rows in [Rows::Into, Rows::Maps] {
        let here: Vec<&str> = rows
            .sources()
            .iter()
            .copied()
            .filter(|s| store.sources.contains_key(*s))
            .filter(|s| *s != "py:mpi4py_buffer" || paths.python.is_some())
            .collect();
        if here.is_empty() {
            continue;
        }
        for &p in plan.ranks.iter().filter(|&&p| p > 1) {
            let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); here.len()];
            for round in 0..rows.rounds() {
                for k in 0..here.len() {
                    let at = (k + round) % here.len();
                    let source = here[at];
                    log(&format!(
                        "{source} {} x{p} (round {}/{})",
                        rows.name(),
                        round + 1,
                        rows.rounds()
                    ));
                    runs[at].push(measure(rows, source, p, round, plan, paths));
                }
            }
            for (source, figs) in here.iter().zip(runs) {
                let Some(kept) = store.sources.get_mut(*source) else {
                    continue;
                };
                for (key, value) in median_figures(&figs) {
                    match value.as_f64() {
                        Some(_) => {
                            kept.insert(key, value);
                        }
                        // A round that failed leaves the suite's figure.
                        None => log(&format!("{source} {key}: a round failed: {value}")),
                    }
                }
            }
        }
    }
}

/// One round's figures of `source` on `p` ranks.
fn measure(
    rows: Rows,
    source: &str,
    p: usize,
    round: usize,
    plan: &Plan,
    paths: &Paths<'_>,
) -> Figures {
    let out = paths.results.join(format!(
        "{}-{}-{p}-{round}.json",
        source.replace(':', "-"),
        rows.key()
    ));
    let exe = std::env::current_exe().expect("current exe");
    match (rows, source) {
        (Rows::Into, "mpi") => mpi_job(&exe, Some(INTO_FLAG), None, p, &out, plan, paths.plan),
        (Rows::Maps, "mpi") => mpi_job(&exe, Some(MAPS_FLAG), None, p, &out, plan, paths.plan),
        (_, "rawmpi") => mpi_job(
            &exe.with_file_name("mpi_raw"),
            Some("--coll"),
            None,
            p,
            &out,
            plan,
            paths.plan,
        ),
        (_, "py:mpi4py_buffer") => mpi4py(p, &out, plan, paths),
        (rows, source) => {
            let _ = std::fs::remove_file(&out);
            let mut cmd = std::process::Command::new(&exe);
            cmd.args([ROUND_FLAG, rows.key(), source, &p.to_string(), "--plan"])
                .arg(paths.plan)
                .arg("--out")
                .arg(&out);
            run_bounded(&mut cmd, mpi_limit(plan))
                .and_then(|()| plan::load_figures(&out).map_err(|e| format!("no figures: {e}")))
                .unwrap_or_else(failed)
        }
    }
}

/// `--round into|maps SOURCE P --plan PLAN --out FILE`: this process is a
/// child of the suite measuring one round of `SOURCE` (`rayon`, or a
/// backend of ours) on `P` ranks; it writes the figures to `FILE`.
pub(super) fn child(args: &[String]) {
    let rows = match args.get(2).map(String::as_str) {
        Some("into") => Rows::Into,
        Some("maps") => Rows::Maps,
        other => panic!("{ROUND_FLAG}: expected into or maps, got {other:?}"),
    };
    let source = args.get(3).expect("source");
    let p: usize = args.get(4).and_then(|p| p.parse().ok()).expect("ranks");
    let plan = Plan::load(arg_value(args, "--plan").expect("--plan").as_ref()).expect("plan");
    let out = arg_value(args, "--out").expect("--out");
    let figs = match source.as_str() {
        "rayon" => match rayon::ThreadPoolBuilder::new().num_threads(p).build() {
            Ok(pool) => {
                let mut figs = Figures::new();
                ours::rayon_map_baselines(&pool, &plan, &mut figs);
                figs
            }
            Err(e) => failed(e),
        },
        backend => fresh_pool(rows, backend, p, &plan),
    };
    plan::save_figures(out.as_ref(), &figs).expect("write the figures");
}

/// mpi4py's buffer collectives in a job of their own.
fn mpi4py(p: usize, out: &Path, plan: &Plan, paths: &Paths<'_>) -> Figures {
    let _ = std::fs::remove_file(out);
    let Some(python) = paths.python else {
        return failed("no Python");
    };
    let mut cmd = mpirun(p);
    cmd.arg(python)
        .arg(paths.script)
        .args(["--mode", "mpi-buffer", "--plan"])
        .arg(paths.plan)
        .arg("--out")
        .arg(out);
    run_bounded(&mut cmd, mpi_limit(plan))
        .map_err(|e| format!("mpirun: {e}"))
        .and_then(|()| python_figures(out))
        .and_then(|mut by_source| {
            by_source
                .remove("py:mpi4py_buffer")
                .ok_or_else(|| "no py:mpi4py_buffer figures".to_string())
        })
        .unwrap_or_else(failed)
}

/// A round's figures when it failed: why, under a key of its own (the
/// medians then keep the suite's figures).
fn failed(why: impl std::fmt::Display) -> Figures {
    Figures::from([("_round".to_string(), format!("failed: {why}").into())])
}

/// Ours on a fresh pool of `backend`.
///
/// The `_into` rows come after 100 untimed calls of each collective at
/// the smallest size: a fresh pool's rings fault their pages in on first
/// use, page by page, and its first 1e3 calls took 4-8 times as long as
/// later ones (a gather still 3-4 times after 23 calls, the suite's
/// iterations of one row), where the suite's own pass has them follow the
/// pool's other rows. The maps make their own untimed calls first (20 of
/// the fine map: about 0.1 s).
fn fresh_pool(rows: Rows, backend: &str, p: usize, plan: &Plan) -> Figures {
    let mut figs = Figures::new();
    let measured = parallelizer::from_config(format!("{backend}:{p}").as_str())
        .map_err(|e| e.to_string())
        .and_then(|par| {
            let guard = par.enter().map_err(|e| e.to_string())?;
            match rows {
                Rows::Into => {
                    let mut warm = plan.clone();
                    warm.f64_ns.sort_unstable();
                    warm.f64_ns.truncate(1);
                    warm.small = Iters::new(99, 1);
                    data::measure_into(&par, &warm, &mut Figures::new());
                    data::measure_into(&par, plan, &mut figs);
                }
                Rows::Maps => ours::measure_pool_fine_coarse(&par, plan, &mut figs),
            }
            drop(guard);
            Ok(())
        });
    match measured {
        Ok(()) => figs,
        Err(e) => failed(e),
    }
}
