//! The `_into` collectives of mpi and processes beside raw rsmpi's and
//! mpi4py's buffer calls, measured again in alternated rounds: each round
//! one `mpirun` job of ours, one of raw rsmpi, one of mpi4py and a fresh
//! `processes` pool, in an order that turns from round to round; each
//! figure is the median of the rounds' ([`COLL_REPS`]), and replaces the
//! one-job figure under the same key.
//!
//! One job per source compared placements, not calls: the same code's
//! `scatter_into` of 1e3 `f64` on `mpi:2` took 0.77 µs in one job and
//! 2.2 µs in the next (and raw rsmpi's same call 0.66 against 2.1 µs),
//! with where `mpirun` and the VM put the job's ranks.

use std::path::Path;

use parallelizer_bench::data;
use parallelizer_bench::measure::Iters;
use parallelizer_bench::plan::{COLL_REPS, Figures, Plan};
use parallelizer_bench::report::Store;

use super::{median_figures, mpi_job, mpi_limit, mpirun, run_bounded};

/// The suite's flag for a job of ours in a round.
pub(super) const INTO_FLAG: &str = "--mpi-par-into";

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

/// The sources of a round, in the order of the first.
const SOURCES: [&str; 4] = ["mpi", "rawmpi", "py:mpi4py_buffer", "processes"];

/// Runs [`COLL_REPS`] rounds for each rank count of the plan and puts the
/// medians into `store`, for the sources the one-job pass measured (a
/// source it had no figures of is left out).
pub(super) fn run(store: &mut Store, plan: &Plan, paths: &Paths<'_>, log: &dyn Fn(&str)) {
    let here: Vec<&str> = SOURCES
        .into_iter()
        .filter(|s| store.sources.contains_key(*s))
        .filter(|s| *s != "py:mpi4py_buffer" || paths.python.is_some())
        .collect();
    if plan.ranks.iter().all(|&p| p < 2) || here.is_empty() {
        return;
    }
    for &p in plan.ranks.iter().filter(|&&p| p > 1) {
        let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); here.len()];
        for round in 0..COLL_REPS {
            for k in 0..here.len() {
                let at = (k + round) % here.len();
                let source = here[at];
                log(&format!(
                    "{source} _into collectives x{p} (round {}/{COLL_REPS})",
                    round + 1
                ));
                runs[at].push(measure(source, p, round, plan, paths));
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
                    // A round that failed leaves the one-job figure.
                    None => log(&format!("{source} {key}: a round failed: {value}")),
                }
            }
        }
    }
}

/// One round's figures of `source` on `p` ranks.
fn measure(source: &str, p: usize, round: usize, plan: &Plan, paths: &Paths<'_>) -> Figures {
    let out = paths.results.join(format!(
        "{}-into-{p}-{round}.json",
        source.replace(':', "-")
    ));
    let exe = std::env::current_exe().expect("current exe");
    match source {
        "mpi" => mpi_job(&exe, Some(INTO_FLAG), None, p, &out, plan, paths.plan),
        "rawmpi" => mpi_job(
            &exe.with_file_name("mpi_raw"),
            Some("--coll"),
            None,
            p,
            &out,
            plan,
            paths.plan,
        ),
        "py:mpi4py_buffer" => mpi4py(p, &out, plan, paths),
        _ => processes(p, plan),
    }
}

/// mpi4py's buffer collectives in a job of their own.
fn mpi4py(p: usize, out: &Path, plan: &Plan, paths: &Paths<'_>) -> Figures {
    let _ = std::fs::remove_file(out);
    let mut failed = Figures::new();
    let Some(python) = paths.python else {
        return failed;
    };
    let mut cmd = mpirun(p);
    cmd.arg(python)
        .arg(paths.script)
        .args(["--mode", "mpi-buffer", "--plan"])
        .arg(paths.plan)
        .arg("--out")
        .arg(out);
    let read = run_bounded(&mut cmd, mpi_limit(plan)).and_then(|()| {
        let text = std::fs::read_to_string(out).map_err(|e| e.to_string())?;
        let mut by_source: std::collections::BTreeMap<String, Figures> =
            serde_json::from_str(&text).map_err(|e| e.to_string())?;
        by_source
            .remove("py:mpi4py_buffer")
            .ok_or_else(|| "no py:mpi4py_buffer figures".to_string())
    });
    match read {
        Ok(figs) => figs,
        Err(e) => {
            failed.insert("_round".into(), format!("failed: mpirun: {e}").into());
            failed
        }
    }
}

/// Ours on a fresh `processes` pool, in this process, after 100 untimed
/// calls of each collective at the smallest size: a fresh pool's rings
/// fault their pages in on first use, page by page, and its first 1e3
/// calls took 4-8 times as long as later ones (a gather still 3-4 times
/// after 23 calls, the suite's iterations of one row), where the suite's
/// own pass has them follow the pool's other rows.
fn processes(p: usize, plan: &Plan) -> Figures {
    let mut figs = Figures::new();
    let mut warm = plan.clone();
    warm.f64_ns.sort_unstable();
    warm.f64_ns.truncate(1);
    warm.small = Iters::new(99, 1);
    let entered = parallelizer::from_config(format!("processes:{p}").as_str())
        .map_err(|e| e.to_string())
        .and_then(|par| {
            let guard = par.enter().map_err(|e| e.to_string())?;
            data::measure_into(&par, &warm, &mut Figures::new());
            data::measure_into(&par, plan, &mut figs);
            drop(guard);
            Ok(())
        });
    if let Err(e) = entered {
        figs.insert("_round".into(), format!("failed: {e}").into());
    }
    figs
}
