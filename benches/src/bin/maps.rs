//! The pool-style map rows of the suite alone, beside their baselines and
//! issue 10's targets: a check of the map scheduler in a few minutes rather
//! than the whole suite's ten. The rows are the suite's own
//! (`ours::measure_pool_maps`); BENCHMARKS.md still comes from `suite`.
//!
//! ```text
//! cargo run --release -p parallelizer-bench [--features mpi] --bin maps -- [--quick] threads:2 processes:4 mpi:2
//! ```
//!
//! For each `MODE:P` it prints the imbalanced maps (dynamic and static
//! schedule) against the ideal (the serial loop's time / P, same run), and
//! the fine and coarse maps against rayon on P threads. `mpi:P` runs this
//! binary under `mpirun -n P`, which measures and writes its figures.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use parallelizer::Parallelizer;
use parallelizer_bench::ours;
use parallelizer_bench::plan::{self, Figures, Plan, arg_value};
use parallelizer_bench::workloads::Imbalance;

const USAGE: &str = "usage: maps [--quick] MODE:P...   (MODE: threads, processes, mpi)";

/// The flag of the `mpirun` child: measure `mpi` and write the figures.
const MPI_CHILD: &str = "--mpi-child";

#[parallelizer::main]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let plan = Plan::new(args.iter().any(|a| a == "--quick"));
    if args.get(1).map(String::as_str) == Some(MPI_CHILD) {
        return mpi_child(&plan, &arg_value(&args, "--out").expect("--out"));
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
    let mut base = Figures::new();
    ours::serial_baselines(&plan, &mut base);
    for (mode, p) in specs {
        let mut rayon = Figures::new();
        ours::rayon_baselines(&plan, p, &mut rayon);
        let ours = if mode == "mpi" {
            under_mpirun(&plan, p)
        } else {
            measure(&format!("{mode}:{p}"), &plan)
        };
        print_rows(&format!("{mode}:{p}"), p, &ours, &base, &rayon);
    }
}

/// The pool-style maps on the parallelizer of `spec`, entered once.
fn measure(spec: &str, plan: &Plan) -> Figures {
    let mut figs = Figures::new();
    match parallelizer::from_config(spec) {
        Ok(par) => {
            let par: Arc<dyn Parallelizer> = par;
            match par.enter() {
                Ok(_entered) => ours::measure_pool_maps(&par, plan, &mut figs),
                Err(e) => eprintln!("{spec}: enter: {e}"),
            }
        }
        Err(e) => eprintln!("{spec}: {e}"),
    }
    figs
}

/// `mpirun -n p` of this binary as [`mpi_child`]; its figures.
fn under_mpirun(plan: &Plan, p: usize) -> Figures {
    let out =
        std::env::temp_dir().join(format!("parallelizer-maps-mpi-{}.json", std::process::id()));
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new("timeout");
    cmd.arg("600")
        .arg("mpirun")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .args(["-n", &p.to_string()])
        .arg(exe)
        .arg(MPI_CHILD)
        .arg("--out")
        .arg(&out)
        .args(plan.quick.then_some("--quick"))
        .stdin(Stdio::null());
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("mpi:{p}: mpirun exited with {s}"),
        Err(e) => eprintln!("mpi:{p}: cannot start mpirun: {e}"),
    }
    let figs = plan::load_figures(&out).unwrap_or_else(|e| {
        eprintln!("mpi:{p}: no figures: {e}");
        Figures::new()
    });
    let _ = std::fs::remove_file(&out);
    figs
}

/// One rank of `mpirun -n P maps --mpi-child`: main measures the `mpi`
/// backend and writes the figures (served workers never get here).
fn mpi_child(plan: &Plan, out: &str) {
    let figs = measure("mpi", plan);
    plan::save_figures(&PathBuf::from(out), &figs).expect("write the figures");
}

/// A figure in seconds, if the row has one.
fn secs(figs: &Figures, key: &str) -> Option<f64> {
    figs.get(key).and_then(serde_json::Value::as_f64)
}

/// The rows of one parallelizer: time, reference, ratio and target.
fn print_rows(spec: &str, p: usize, ours: &Figures, base: &Figures, rayon: &Figures) {
    println!(
        "\n{spec:<14} {:<22} {:>9} {:>9} {:>7} target",
        "row", "ours s", "ref s", "ratio"
    );
    let mut rows = Vec::new();
    for kind in Imbalance::ALL {
        let ideal = secs(base, &plan::k_imbalanced(kind.key(), "serial", 1)).map(|s| s / p as f64);
        for sched in ["dynamic", "static"] {
            let key = plan::k_imbalanced(kind.key(), sched, p);
            let target = if sched == "dynamic" {
                "<= 1.15 ideal"
            } else {
                "(static split)"
            };
            rows.push((
                format!("imbalanced {} {sched}", kind.key()),
                key,
                ideal,
                target,
            ));
        }
    }
    rows.push((
        "fine".into(),
        plan::k_pool("fine", p),
        secs(rayon, &plan::k_fine(p)),
        "<= 1.5 rayon",
    ));
    let coarse = secs(rayon, &plan::k_coarse(p));
    rows.push((
        "coarse".into(),
        plan::k_pool("coarse", p),
        coarse,
        "<= 1.1 rayon",
    ));
    for (name, key, reference, target) in rows {
        match (secs(ours, &key), reference) {
            (Some(t), Some(r)) => {
                println!(
                    "{:<14} {name:<22} {t:>9.4} {r:>9.4} {:>7.2} {target}",
                    "",
                    t / r
                );
            }
            _ => println!(
                "{:<14} {name:<22} {}",
                "",
                ours.get(&key).map_or("missing".into(), |v| v.to_string())
            ),
        }
    }
}
