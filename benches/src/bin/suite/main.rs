//! The benchmark suite: every workload on every backend next to its
//! baseline, in one run; writes BENCHMARKS.md and the bandwidth plot.
//!
//! ```text
//! bash benches/run.sh [--quick]          # builds, makes the Python venv, runs this
//! cargo run --release -p parallelizer-bench --bin suite -- [--quick] [--python PY] [--out FILE]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parallelizer::Error;
use parallelizer_bench::plan::{self, Figures, LEVEL_REPS, Plan, arg_value};
use parallelizer_bench::rawsock::{self, CHILD_FLAG, EXIT_FLAG};
use parallelizer_bench::report::{self, Store};
use parallelizer_bench::{memory, ours};

mod rounds;

const USAGE: &str = "\
usage: suite [--quick] [--python PYTHON] [--out BENCHMARKS.md] [--mcutils MCUTILS.json]
       suite --report-only FIGURES.json [--out BENCHMARKS.md]

Runs every workload on serial, threads, processes and (with --features mpi,
under mpirun) mpi, each next to its baseline, and writes BENCHMARKS.md, the
bandwidth plot and the raw figures (benches/results/). --quick: smaller
sizes and few iterations (a smoke test, under a minute). --python: the
interpreter of a venv with numpy and mpi4py, for the Python anchors.
--mcutils: the Python original's figures (default:
benches/reference/mcutils-bench.json).";

/// In a worker process launched by a backend (processes re-exec, MPI ranks)
/// the guard serves tasks and exits; elsewhere `main` runs.
#[parallelizer::main]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(EXIT_FLAG) => return,
        Some(CHILD_FLAG) => {
            let path = args.get(2).expect("socket path");
            let rank = args.get(3).and_then(|r| r.parse().ok()).expect("rank");
            if let Err(e) = rawsock::child_main(Path::new(path), rank) {
                eprintln!("raw-socket child {rank}: {e}");
                std::process::exit(1);
            }
            return;
        }
        Some(memory::MEMORY_FLAG) => {
            let bytes = args.get(2).and_then(|b| b.parse().ok()).expect("bytes");
            let out = arg_value(&args, "--out").expect("--out FILE");
            return memory::probe(bytes, Path::new(&out)).expect("write the figures");
        }
        Some("--mpi-par") => return mpi_par(&args, MpiVariant::Plain),
        Some("--mpi-par-verify") => return mpi_par(&args, MpiVariant::Verify),
        Some("--mpi-par-level") => return mpi_par(&args, MpiVariant::Level),
        Some(rounds::INTO_FLAG) => return mpi_par(&args, MpiVariant::Into),
        Some(rounds::MAPS_FLAG) => return mpi_par(&args, MpiVariant::Maps),
        Some(rounds::ROUND_FLAG) => return rounds::child(&args),
        Some("--help" | "-h") => return println!("{USAGE}"),
        _ => {}
    }
    let root = workspace_root();
    let out = arg_value(&args, "--out").map_or_else(|| root.join("BENCHMARKS.md"), PathBuf::from);
    let results = root.join("benches/results");
    std::fs::create_dir_all(&results).expect("create benches/results");
    // Beside the report (committed with it), unlike the raw figures.
    let svg = root.join("benches/bandwidth.svg");
    let svg_link = relative_link(&out, &svg);

    if let Some(figures) = arg_value(&args, "--report-only") {
        let text = std::fs::read_to_string(&figures).expect("read the figures");
        let store: Store = serde_json::from_str(&text).expect("parse the figures");
        report::write(&store, &out, &svg, &svg_link).expect("write the report");
        eprintln!("wrote {}", out.display());
        return;
    }

    let quick = args.iter().any(|a| a == "--quick");
    watchdog(Duration::from_secs(if quick { 300 } else { 1500 }));
    let start = Instant::now();
    let log = move |msg: &str| eprintln!("[{:6.1}s] {msg}", start.elapsed().as_secs_f64());
    let plan = Plan::new(quick);
    let plan_path = results.join("plan.json");
    plan.save(&plan_path).expect("write the plan");

    let mut store = Store {
        plan: Some(plan.clone()),
        ..Store::default()
    };
    store.machine = machine(&args);
    store.mcutils = mcutils_figures(&args, &root);

    // Our figures, in process: serial, threads, processes.
    let mut serial = Figures::new();
    match parallelizer::from_config("serial") {
        Ok(par) => ours::measure_backend(&par, &plan, &mut serial, &log),
        Err(e) => {
            store
                .missing
                .insert("serial".into(), format!("failed: {e}"));
        }
    }
    store.sources.insert("serial".into(), serial);
    for backend in ["threads", "processes"] {
        let mut figs = Figures::new();
        let mut built = true;
        for &p in &plan.ranks {
            let par = match parallelizer::from_config(format!("{backend}:{p}").as_str()) {
                Ok(par) => par,
                Err(e) => {
                    built = false;
                    store.missing.insert(backend.into(), unavailable(&e));
                    break;
                }
            };
            log(&format!("{backend} x{p}: start-up"));
            ours::record(&mut figs, plan::k_startup(p), || {
                ours::measure_startup(&par, plan.startup)
            });
            ours::measure_backend(&par, &plan, &mut figs, &log);
        }
        if built {
            store.sources.insert(backend.into(), figs);
        }
    }

    // Peak memory of a large broadcast, in a process of its own.
    if store.sources.contains_key("processes") {
        let bytes: usize = if quick { 64 << 20 } else { 1 << 30 };
        log(&format!(
            "processes x{}: peak memory of a {} MiB broadcast_into",
            memory::RANKS,
            bytes >> 20
        ));
        let out = results.join("memory.json");
        let _ = std::fs::remove_file(&out);
        let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
        cmd.args([memory::MEMORY_FLAG, &bytes.to_string(), "--out"])
            .arg(&out);
        let limit = Duration::from_secs(if quick { 120 } else { 300 });
        let figs = run_bounded(&mut cmd, limit)
            .and_then(|()| plan::load_figures(&out).map_err(|e| format!("no figures: {e}")));
        match figs {
            Ok(figs) => {
                store.sources.insert("memory".into(), figs);
            }
            Err(e) => {
                store
                    .missing
                    .insert("memory".into(), format!("failed: {e}"));
            }
        }
    }

    // In-process baselines.
    log("baselines: serial loop, rayon, memcpy");
    let mut serial_loop = Figures::new();
    ours::serial_baselines(&plan, &mut serial_loop);
    parallelizer_bench::data::serial_baselines(&plan, &mut serial_loop);
    store.sources.insert("serial_loop".into(), serial_loop);
    let mut rayon = Figures::new();
    for &p in &plan.ranks {
        ours::rayon_baselines(&plan, p, &mut rayon);
        parallelizer_bench::data::rayon_baselines(&plan, p, &mut rayon);
    }
    store.sources.insert("rayon".into(), rayon);
    let mut channel = Figures::new();
    ours::channel_baselines(&plan, &mut channel);
    store.sources.insert("channel".into(), channel);
    let mut memcpy = Figures::new();
    ours::memcpy_baselines(&plan, &mut memcpy);
    store.sources.insert("memcpy".into(), memcpy);
    log("baselines: raw sockets");
    let mut raw = Figures::new();
    for &p in &plan.ranks {
        ours::rawsock_baselines(&plan, p, &mut raw);
    }
    store.sources.insert("rawsock".into(), raw);

    // MPI: ours and raw rsmpi, each in its own mpirun job.
    run_mpi(&mut store, &plan, &plan_path, &results, &log);

    // Python anchors.
    run_python(&mut store, &args, &plan, &plan_path, &results, &root, &log);

    // The `_into` collectives, the pool-style maps and their baselines
    // again, in alternated rounds.
    let python = arg_value(&args, "--python").map(PathBuf::from);
    let script = root.join("benches/python/bench.py");
    let paths = rounds::Paths {
        plan: &plan_path,
        results: &results,
        python: python.as_deref(),
        script: &script,
    };
    rounds::run(&mut store, &plan, &paths, &log);

    store.wall = start.elapsed().as_secs_f64();
    let json = results.join("figures.json");
    std::fs::write(
        &json,
        serde_json::to_string_pretty(&store).expect("serialize"),
    )
    .expect("write the figures");
    report::write(&store, &out, &svg, &svg_link).expect("write the report");
    log(&format!(
        "wrote {}, {} and {}",
        out.display(),
        svg.display(),
        json.display()
    ));
}

/// Ends the run if it hangs (a backend stuck in a collective): the suite is
/// meant to finish in minutes, and a bench that never returns blocks
/// whoever runs it.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "suite: still running after {} s; giving up (a backend hangs?)",
            limit.as_secs()
        );
        std::process::exit(3);
    });
}

/// The reason a backend is not in this run.
fn unavailable(e: &Error) -> String {
    match e {
        Error::UnknownParallelizer { .. } => "n/a (backend not built)".into(),
        other => format!("failed: {other}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

fn relative_link(md: &Path, target: &Path) -> String {
    let base = md.parent().unwrap_or(Path::new("."));
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    let target = target
        .canonicalize()
        .unwrap_or_else(|_| target.to_path_buf());
    target.strip_prefix(&base).map_or_else(
        |_| target.display().to_string(),
        |p| p.display().to_string(),
    )
}

/// The first line of `cmd args` (stdout, else stderr), if it runs.
fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(str::to_string)
}

fn machine(args: &[String]) -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".into(), |s| s.trim().to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .map_or("unknown".into(), |l| {
            l.trim_start_matches("MemTotal:").trim().to_string()
        });
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut m = vec![
        (
            "date (UTC)".into(),
            first_line("date", &["-u", "+%Y-%m-%d %H:%M"]).unwrap_or_default(),
        ),
        ("nproc".into(), nproc.to_string()),
        ("CPU".into(), model),
        ("memory".into(), mem),
        (
            "kernel".into(),
            first_line("uname", &["-sr"]).unwrap_or_default(),
        ),
        (
            "rustc".into(),
            first_line(&rustc, &["-V"]).unwrap_or_else(|| "unknown".into()),
        ),
        (
            "commit".into(),
            first_line(
                "git",
                &[
                    "-C",
                    env!("CARGO_MANIFEST_DIR"),
                    "describe",
                    "--always",
                    "--dirty",
                    "--abbrev=7",
                ],
            )
            .unwrap_or_default(),
        ),
        (
            "cargo features".into(),
            if cfg!(feature = "mpi") {
                "mpi".into()
            } else {
                "(none)".into()
            },
        ),
    ];
    if cfg!(feature = "mpi") {
        m.push((
            "mpirun".into(),
            first_line("mpirun", &["--version"]).unwrap_or_else(|| "not found".into()),
        ));
    }
    if let Some(py) = arg_value(args, "--python") {
        m.push((
            "python".into(),
            first_line(&py, &["--version"]).unwrap_or_else(|| "not found".into()),
        ));
    }
    m
}

fn mcutils_figures(args: &[String], root: &Path) -> Option<serde_json::Value> {
    // Committed beside the benches, with where the figures come from
    // (benches/reference/README.md).
    let path = arg_value(args, "--mcutils").map_or_else(
        || root.join("benches/reference/mcutils-bench.json"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&path)
        .map_err(|e| eprintln!("McUtils figures: cannot read {}: {e}", path.display()))
        .ok()?;
    serde_json::from_str(&text)
        .map_err(|e| eprintln!("McUtils figures: {} is not JSON: {e}", path.display()))
        .ok()
}

/// Runs `cmd`, killing it after `limit`. Its stdout goes to our stderr.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if t0.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `mpirun -n P` with what OpenMPI needs to run as root and oversubscribed
/// (4 ranks on 2 cores); harmless for other MPIs.
fn mpirun(p: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .args(["-n", &p.to_string()]);
    c
}

fn mpi_limit(plan: &Plan) -> Duration {
    Duration::from_secs(if plan.quick { 120 } else { 300 })
}

fn run_mpi(store: &mut Store, plan: &Plan, plan_path: &Path, results: &Path, log: &dyn Fn(&str)) {
    if !cfg!(feature = "mpi") {
        let why = "n/a (suite built without `--features mpi`)".to_string();
        store.missing.insert("mpi".into(), why.clone());
        store.missing.insert("rawmpi".into(), why);
        return;
    }
    if first_line("mpirun", &["--version"]).is_none() {
        let why = "n/a (no `mpirun` on PATH)".to_string();
        store.missing.insert("mpi".into(), why.clone());
        store.missing.insert("rawmpi".into(), why);
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let raw_exe = exe.with_file_name("mpi_raw");
    for (source, program, extra) in [
        ("rawmpi", raw_exe.clone(), None),
        ("mpi", exe.clone(), Some("--mpi-par")),
        ("mpi_verify", exe.clone(), Some("--mpi-par-verify")),
    ] {
        let mut all = Figures::new();
        for &p in &plan.ranks {
            log(&format!("{source} x{p} (mpirun)"));
            let out = results.join(format!("{source}-{p}.json"));
            all.extend(mpi_job(&program, extra, None, p, &out, plan, plan_path));
        }
        if let Some(serde_json::Value::String(why)) = all.get("_unavailable") {
            store.missing.insert(source.into(), why.clone());
        } else {
            store.sources.insert(source.into(), all);
        }
    }
    // Small calls (the dispatch of an empty region, the ping-pongs,
    // an allreduce of one f64): their figures swing by tens of percent, up
    // to 2.5x, from one job to the next on these VMs (where the job's ranks
    // and memory land), for raw rsmpi as for ours. So each runs in
    // LEVEL_REPS jobs of its own, raw rsmpi and ours each at both thread
    // levels, alternated, and each figure is the median of the jobs' medians; these
    // replace the one-job figures of `rawmpi` and `mpi` (the default level,
    // `multiple`) under the same keys.
    for &p in &plan.ranks {
        // (source, raw rsmpi?, thread level, figures)
        let mut runs: [(&str, bool, Option<&str>, Vec<Figures>); 4] = [
            ("rawmpi", true, None, Vec::new()),
            ("rawmpi_multiple", true, Some("multiple"), Vec::new()),
            ("mpi_multiple", false, Some("multiple"), Vec::new()),
            ("mpi_single", false, Some("single"), Vec::new()),
        ];
        for rep in 0..LEVEL_REPS {
            for (source, raw, level, figs) in &mut runs {
                log(&format!(
                    "{source} small calls x{p} (mpirun, {}/{LEVEL_REPS})",
                    rep + 1
                ));
                let out = results.join(format!("{source}-small-{p}-{rep}.json"));
                let (program, flag) = match raw {
                    true => (&raw_exe, "--small"),
                    false => (&exe, "--mpi-par-level"),
                };
                let job = mpi_job(program, Some(flag), *level, p, &out, plan, plan_path);
                figs.push(job);
            }
        }
        for (source, _, _, figs) in runs {
            let merged = median_figures(&figs);
            if source == "mpi_multiple" {
                // The default level: the `mpi` backend's own figures.
                if let Some(mpi) = store.sources.get_mut("mpi") {
                    mpi.extend(merged.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            if store.missing.contains_key(source) {
                continue;
            }
            store
                .sources
                .entry(source.into())
                .or_default()
                .extend(merged);
        }
    }
}

/// One `mpirun -n p program [extra] --plan .. --out out` job (with
/// `PARALLELIZER_MPI_THREAD_LEVEL=level` if given): its figures, or the
/// failure under the dispatch key.
fn mpi_job(
    program: &Path,
    extra: Option<&str>,
    level: Option<&str>,
    p: usize,
    out: &Path,
    plan: &Plan,
    plan_path: &Path,
) -> Figures {
    let _ = std::fs::remove_file(out);
    let mut cmd = mpirun(p);
    if let Some(level) = level {
        cmd.env("PARALLELIZER_MPI_THREAD_LEVEL", level);
    }
    cmd.arg(program);
    if let Some(flag) = extra {
        cmd.arg(flag);
    }
    cmd.arg("--plan").arg(plan_path).arg("--out").arg(out);
    let mut figs = Figures::new();
    if let Err(e) = run_bounded(&mut cmd, mpi_limit(plan)) {
        figs.insert(plan::k_dispatch(p), format!("failed: mpirun: {e}").into());
        return figs;
    }
    match plan::load_figures(out) {
        Ok(f) => figs.extend(f),
        Err(e) => {
            figs.insert(
                plan::k_dispatch(p),
                format!("failed: no figures: {e}").into(),
            );
        }
    }
    figs
}

/// Per key, the median of the numeric figures of `runs` (a key any run
/// failed keeps that run's message).
fn median_figures(runs: &[Figures]) -> Figures {
    let mut out = Figures::new();
    let keys: std::collections::BTreeSet<&String> = runs.iter().flat_map(|f| f.keys()).collect();
    for key in keys {
        let values: Vec<&serde_json::Value> = runs.iter().filter_map(|f| f.get(key)).collect();
        let numbers: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
        let value = match values.iter().find(|v| v.is_string()) {
            Some(failed) => (*failed).clone(),
            None if numbers.is_empty() => continue,
            None => parallelizer_bench::measure::median(numbers).into(),
        };
        out.insert(key.clone(), value);
    }
    out
}

/// Which figures an `mpirun -n P suite --mpi-par...` job measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MpiVariant {
    /// `--mpi-par`: every workload on the `mpi` backend.
    Plain,
    /// `--mpi-par-verify`: the cost of the backend's `verify` option.
    Verify,
    /// `--mpi-par-level`: the small calls the thread level weighs on (the
    /// suite sets `PARALLELIZER_MPI_THREAD_LEVEL` on the job).
    Level,
    /// `--mpi-par-into`: the `_into` collectives (with raw rsmpi's same
    /// calls in the job), for the alternated rounds (`rounds.rs`).
    Into,
    /// `--mpi-par-maps`: the pool-style fine and coarse maps, for the
    /// alternated rounds.
    Maps,
}

/// `--mpi-par`: this process is one rank of `mpirun -n P suite --mpi-par`;
/// main (rank 0) measures the `mpi` backend and writes the figures. (Worker
/// ranks never get here once the MPI backend's worker guard serves them.)
fn mpi_par(args: &[String], variant: MpiVariant) {
    let plan = Plan::load(arg_value(args, "--plan").expect("--plan").as_ref()).expect("plan");
    let out = arg_value(args, "--out").expect("--out");
    let rank0 = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .is_none_or(|r| r == "0");
    let mut figs = Figures::new();
    let config = parallelizer::Config::new("mpi").option("verify", variant == MpiVariant::Verify);
    match parallelizer::from_config(&config) {
        Ok(par) => {
            let log = |m: &str| {
                if rank0 {
                    eprintln!("        {m}");
                }
            };
            match variant {
                MpiVariant::Plain => ours::measure_backend(&par, &plan, &mut figs, &log),
                MpiVariant::Verify => ours::measure_verify_cost(&par, &plan, &mut figs),
                MpiVariant::Level => ours::measure_thread_level_cost(&par, &plan, &mut figs),
                MpiVariant::Into | MpiVariant::Maps => match par.enter() {
                    Ok(_entered) if variant == MpiVariant::Into => {
                        parallelizer_bench::data::measure_into(&par, &plan, &mut figs)
                    }
                    Ok(_entered) => ours::measure_pool_fine_coarse(&par, &plan, &mut figs),
                    Err(e) => {
                        figs.insert("_unavailable".into(), format!("failed: enter: {e}").into());
                    }
                },
            }
        }
        Err(e) => {
            figs.insert("_unavailable".into(), unavailable(&e).into());
        }
    }
    if rank0 {
        plan::save_figures(out.as_ref(), &figs).expect("write the figures");
    }
}

/// The figures `bench.py` wrote to `out`, by source (`py:pool`, ...).
fn python_figures(out: &Path) -> Result<std::collections::BTreeMap<String, Figures>, String> {
    let text = std::fs::read_to_string(out).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn run_python(
    store: &mut Store,
    args: &[String],
    plan: &Plan,
    plan_path: &Path,
    results: &Path,
    root: &Path,
    log: &dyn Fn(&str),
) {
    let sources = [
        "py:pool",
        "py:serial",
        "py:mpi4py_pickle",
        "py:mpi4py_buffer",
    ];
    let Some(py) = arg_value(args, "--python") else {
        for s in sources {
            store.missing.insert(
                s.into(),
                "not run (use `bash benches/run.sh`, or pass --python)".into(),
            );
        }
        return;
    };
    let script = root.join("benches/python/bench.py");
    let merge = |store: &mut Store, out: &Path, what: &str| match python_figures(out) {
        Ok(by_source) => {
            for (src, figs) in by_source {
                store.missing.remove(&src);
                store.sources.entry(src).or_default().extend(figs);
            }
        }
        Err(e) => log(&format!("python {what}: no figures ({e})")),
    };
    log("python: multiprocessing.Pool and serial loop");
    let out = results.join("python-pool.json");
    let _ = std::fs::remove_file(&out);
    let mut cmd = Command::new(&py);
    cmd.arg(&script)
        .args(["--mode", "pool", "--plan"])
        .arg(plan_path)
        .arg("--out")
        .arg(&out);
    match run_bounded(
        &mut cmd,
        Duration::from_secs(if plan.quick { 120 } else { 400 }),
    ) {
        Ok(()) => merge(store, &out, "pool"),
        Err(e) => {
            for s in ["py:pool", "py:serial"] {
                store.missing.insert(s.into(), format!("failed: {e}"));
            }
        }
    }
    if first_line("mpirun", &["--version"]).is_none() {
        for s in ["py:mpi4py_pickle", "py:mpi4py_buffer"] {
            store
                .missing
                .insert(s.into(), "n/a (no `mpirun` on PATH)".into());
        }
        return;
    }
    for &p in &plan.ranks {
        log(&format!("python: mpi4py x{p} (mpirun)"));
        let out = results.join(format!("python-mpi-{p}.json"));
        let _ = std::fs::remove_file(&out);
        let mut cmd = mpirun(p);
        cmd.arg(&py)
            .arg(&script)
            .args(["--mode", "mpi", "--plan"])
            .arg(plan_path)
            .arg("--out")
            .arg(&out);
        match run_bounded(&mut cmd, mpi_limit(plan)) {
            Ok(()) => merge(store, &out, "mpi4py"),
            Err(e) => {
                for s in ["py:mpi4py_pickle", "py:mpi4py_buffer"] {
                    store
                        .missing
                        .insert(s.into(), format!("failed: mpirun: {e}"));
                }
            }
        }
    }
}
