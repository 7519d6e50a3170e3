//! The generic collectives of large `Vec<f64>` against their `_into` form,
//! with glibc's heap as it comes (4 KiB pages) and on transparent huge
//! pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, glibc 2.35 and later):
//! a check of what that one variable buys a program that moves large
//! vectors, outside the suite (whose figures are the defaults').
//!
//! ```text
//! cargo run --release -p parallelizer-bench [--features mpi] --bin heap -- [--quick] processes:2 mpi:2
//! ```
//!
//! glibc reads its tunables when a process starts, so each setting runs in
//! processes of its own: for each `MODE:P` this binary runs itself (under
//! `mpirun -n P -x GLIBC_TUNABLES` for `mpi`) once with the variable unset
//! and once set, twice in turn, and prints each pair's medians: the `_into`
//! call on reused buffers and the generic call, whose vectors are fresh
//! from the heap on every call (main's a clone of its data, each result a
//! new vector), as in the suite.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use parallelizer::Parallelizer;
use parallelizer_bench::data::{IntoArgs, into_collective};
use parallelizer_bench::plan::{self, Figures, Plan, arg_value};
use parallelizer_bench::report::fmt_time;
use parallelizer_bench::tasks::{CollArgs, Kind, Op, collective};

const USAGE: &str = "usage: heap [--quick] MODE:P...   (MODE: threads, processes, mpi)";

/// The flag of a child: measure `--spec` and write the figures to `--out`.
const CHILD: &str = "--child";

/// What the children are told: glibc serves its heap on huge pages.
const HUGE: &str = "glibc.malloc.hugetlb=1";

/// The collectives measured.
const OPS: [Op; 3] = [Op::Bcast, Op::Scatter, Op::Gather];

/// Alternations of the two settings.
const PAIRS: usize = 2;

#[parallelizer::main]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    if args.get(1).map(String::as_str) == Some(CHILD) {
        let spec = arg_value(&args, "--spec").expect("--spec");
        let out = arg_value(&args, "--out").expect("--out");
        let figs = measure(&spec, &Plan::new(quick));
        return plan::save_figures(Path::new(&out), &figs).expect("write the figures");
    }
    let specs: Vec<(String, usize)> = args[1..]
        .iter()
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| {
            let (mode, p) = a.split_once(':')?;
            Some((mode.to_string(), p.parse().ok()?))
        })
        .collect();
    if specs.is_empty() || specs.iter().any(|(_, p)| *p < 2) {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let ns = Plan::new(quick).f64_ns;
    println!(
        "| op | n | backend | `_into`, 4 KiB heap | generic | ratio | `_into`, huge-page heap | generic | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (mode, p) in specs {
        let mut runs: [Vec<Figures>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..PAIRS {
            for (huge, run) in runs.iter_mut().enumerate() {
                run.push(child(&mode, p, huge == 1, quick));
            }
        }
        for op in OPS {
            for &n in ns.iter().filter(|&&n| n >= 1_000_000) {
                let mut row = format!("| {} | {n:.0e} | {mode}:{p} |", op.key());
                for run in &runs {
                    let into = fmt_all(run, &into_key(op, n));
                    let generic = fmt_all(run, &generic_key(op, n));
                    let ratio = ratio(run, &generic_key(op, n), &into_key(op, n));
                    row += &format!(" {into} | {generic} | {ratio} |");
                }
                println!("{row}");
            }
        }
    }
}

/// The figures of `mode:p` measured in processes of their own, with
/// glibc's heap on huge pages or not.
fn child(mode: &str, p: usize, huge: bool, quick: bool) -> Figures {
    let out = std::env::temp_dir().join(format!(
        "parallelizer-heap-{}-{mode}{p}-{huge}.json",
        std::process::id()
    ));
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new("timeout");
    cmd.arg("900");
    let spec = if mode == "mpi" {
        cmd.arg("mpirun")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
            .args(["-x", "GLIBC_TUNABLES", "-n", &p.to_string()]);
        "mpi".to_string()
    } else {
        format!("{mode}:{p}")
    };
    cmd.arg(exe)
        .arg(CHILD)
        .args(["--spec", &spec, "--out"])
        .arg(&out)
        .args(quick.then_some("--quick"))
        .stdin(Stdio::null());
    if huge {
        cmd.env("GLIBC_TUNABLES", HUGE);
    } else {
        // `-x` passes the variable on even unset: an empty value.
        cmd.env("GLIBC_TUNABLES", "");
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("{mode}:{p}: the child exited with {s}"),
        Err(e) => eprintln!("{mode}:{p}: cannot start the child: {e}"),
    }
    let figs = plan::load_figures(&out).unwrap_or_else(|e| {
        eprintln!("{mode}:{p}: no figures: {e}");
        Figures::new()
    });
    let _ = std::fs::remove_file(PathBuf::from(&out));
    figs
}

/// The `_into` and generic figures of `spec` (the `mpi` child's main
/// measures; served workers never get here).
fn measure(spec: &str, plan: &Plan) -> Figures {
    let mut figs = Figures::new();
    let par: Arc<dyn Parallelizer> = match parallelizer::from_config(spec) {
        Ok(par) => par,
        Err(e) => {
            eprintln!("{spec}: {e}");
            return figs;
        }
    };
    let _entered = match par.enter() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{spec}: enter: {e}");
            return figs;
        }
    };
    for op in OPS {
        for &n in plan.f64_ns.iter().filter(|&&n| n >= 1_000_000) {
            let iters = plan.iters_for(n * 8);
            match par.run(into_collective, IntoArgs { op, n, iters }) {
                Ok(Some(t)) => {
                    figs.insert(into_key(op, n), t.ours.into());
                }
                other => eprintln!("{spec}: {} _into {n}: {other:?}", op.key()),
            }
            let kind = Kind::F64;
            match par.run(collective, CollArgs { op, kind, n, iters }) {
                Ok(Some(t)) => {
                    figs.insert(generic_key(op, n), t.into());
                }
                other => eprintln!("{spec}: {} generic {n}: {other:?}", op.key()),
            }
        }
    }
    figs
}

fn into_key(op: Op, n: usize) -> String {
    format!("into:{}:{n}", op.key())
}

fn generic_key(op: Op, n: usize) -> String {
    format!("generic:{}:{n}", op.key())
}

/// One figure of every run, `a / b`.
fn fmt_all(runs: &[Figures], key: &str) -> String {
    let all: Vec<String> = runs
        .iter()
        .map(|f| secs(f, key).map_or("n/a".into(), fmt_time))
        .collect();
    all.join(", ")
}

/// The ratio `num / den` of every run, `a / b`.
fn ratio(runs: &[Figures], num: &str, den: &str) -> String {
    let all: Vec<String> = runs
        .iter()
        .map(|f| match (secs(f, num), secs(f, den)) {
            (Some(a), Some(b)) => format!("{:.2}×", a / b),
            _ => "n/a".into(),
        })
        .collect();
    all.join(", ")
}

fn secs(figs: &Figures, key: &str) -> Option<f64> {
    figs.get(key).and_then(serde_json::Value::as_f64)
}
