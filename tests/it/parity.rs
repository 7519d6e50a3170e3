//! McUtils parity, the parts that are not collectives: what the runtime
//! tells `tracing` (regions, collectives, the workers' lifecycle, worker
//! processes' events on main's subscriber), McUtils' `log_level` filtering
//! what ranks print, and the names McUtils users type.

use crate::common::collect::Collector;

use parallelizer::prelude::*;

#[parallelizer::task]
fn traced_region(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    let x = par
        .broadcast(par.on_main().then_some(vec![1.5f64; 8]))
        .unwrap();
    let _ = par
        .scatter_pod(par.on_main().then(|| vec![0u8; 30]))
        .unwrap();
    par.gather(par.id() + x.len()).unwrap()
}

/// Regions and collectives: a span and an end event per call on every
/// rank, with the operation, the rank, the bytes (when the backend moved
/// bytes: plain data here) and the duration; worker threads' lifecycle.
#[test]
fn tracing_reports_regions_collectives_and_worker_threads() {
    let collector = Collector::default();
    tracing::subscriber::with_default(collector.clone(), || {
        let par = from_config("threads:3").unwrap();
        assert_eq!(par.run(traced_region, ()).unwrap(), Some(vec![8, 9, 10]));
    });
    let regions = collector.with("parallelizer::region", "region done");
    let mut ranks: Vec<String> = regions
        .iter()
        .filter_map(|e| e.field("rank").map(str::to_string))
        .collect();
    ranks.sort();
    assert_eq!(ranks, ["0", "1", "2"], "{regions:?}");
    assert!(regions.iter().all(|e| e.field("micros").is_some()));
    for op in ["broadcast", "scatter", "gather"] {
        let calls: Vec<_> = collector
            .with("parallelizer::collective", "")
            .into_iter()
            .filter(|e| e.field("op") == Some(op))
            .collect();
        assert_eq!(calls.len(), 3, "{op}: {calls:?}");
        assert!(
            calls.iter().all(|e| e.field("ok") == Some("true")),
            "{calls:?}"
        );
    }
    // Plain data has a known size even on threads: main keeps its 10 bytes.
    let scatter = collector.with("parallelizer::collective", "scatter on rank 0");
    assert_eq!(scatter[0].field("bytes"), Some("10"), "{scatter:?}");
    let started = collector.with("parallelizer::worker", "worker thread started");
    let joined = collector.with("parallelizer::worker", "worker thread joined");
    assert_eq!(
        (started.len(), joined.len()),
        (2, 2),
        "{:?}",
        collector.seen()
    );
}

/// Processes: spawn, ready and reap on main; the workers' own region and
/// collective events reach main's subscriber, with the worker's rank.
#[cfg(target_os = "linux")]
#[parallelizer::test]
fn tracing_reports_worker_processes_and_forwards_their_events() {
    let _spawns = crate::common::procs::spawns();
    let collector = Collector::default();
    tracing::subscriber::with_default(collector.clone(), || {
        let par = from_config(Config::new("processes").nprocs(3)).unwrap();
        assert_eq!(par.run(traced_region, ()).unwrap(), Some(vec![8, 9, 10]));
    });
    for what in [
        "worker process spawned",
        "worker process ready",
        "worker process reaped",
    ] {
        let mut ranks: Vec<String> = collector
            .with("parallelizer::worker", what)
            .iter()
            .filter_map(|e| e.field("rank").map(str::to_string))
            .collect();
        ranks.sort();
        assert_eq!(ranks, ["1", "2"], "{what}: {:?}", collector.seen());
    }
    // The relay may still be writing the last lines after the reap.
    let forwarded = |origin: &str| {
        collector
            .seen()
            .into_iter()
            .filter(|e| e.target == "parallelizer::worker" && e.field("origin") == Some(origin))
            .collect::<Vec<_>>()
    };
    let gathers: Vec<_> = forwarded("parallelizer::collective")
        .into_iter()
        .filter(|e| e.message.contains("gather on rank"))
        .collect();
    let mut ranks: Vec<String> = gathers
        .iter()
        .filter_map(|e| e.field("rank").map(str::to_string))
        .collect();
    ranks.sort();
    assert_eq!(ranks, ["1", "2"], "{gathers:?}");
    // The worker's own fields travel in the message: bytes of the gather.
    assert!(
        gathers
            .iter()
            .all(|e| e.message.contains("op=\"gather\"") || e.message.contains("op=gather")),
        "{gathers:?}"
    );
    assert_eq!(forwarded("parallelizer::region").len(), 2);
}

/// McUtils' fallback to the default for an unknown name, now logged. The
/// default is process-wide: serial, unless a test running alongside has
/// entered a parallelizer, so the test checks that the one returned is the
/// one the warning names as the default.
#[test]
fn lookup_of_an_unknown_name_falls_back_and_says_so() {
    let collector = Collector::default();
    let got = tracing::subscriber::with_default(collector.clone(), || {
        parallelizer::lookup("no-such-parallelizer")
            .mode()
            .to_string()
    });
    let warned: Vec<_> = collector
        .seen()
        .into_iter()
        .filter(|e| e.level == tracing::Level::WARN && e.message.contains("no-such-parallelizer"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", collector.seen());
    assert_eq!(
        warned[0].field("fallback"),
        Some(got.as_str()),
        "{warned:?}"
    );
    assert!(
        warned[0]
            .message
            .contains(&format!("returning the default ({got})")),
        "{warned:?}"
    );
}

/// Modes in any case, McUtils' names, "did you mean" for a typo, and the
/// feature a build lacks.
#[test]
fn names_mcutils_users_type() {
    let cases: &[(&str, &str)] = if cfg!(target_os = "linux") {
        &[
            ("Serial", "serial"),
            ("THREADS:2", "threads"),
            ("multiprocessing:2", "processes"),
            ("MultiProcessing:2", "processes"),
        ]
    } else {
        &[("Serial", "serial"), ("THREADS:2", "threads")]
    };
    for &(typed, mode) in cases {
        let par = from_config(typed).unwrap();
        assert_eq!(par.mode(), mode, "{typed}");
        assert_eq!(par.core().config().mode, mode, "{typed}");
    }
    for (typo, meant) in [
        ("thread:2", "threads"),
        ("serail", "serial"),
        ("multiprocesing", "multiprocessing"),
    ] {
        let err = from_config(typo).err().unwrap();
        assert!(matches!(err, Error::UnknownParallelizer { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("(did you mean `{meant}`?)")),
            "{typo}: {err}"
        );
    }
    let err = from_config("warp").err().unwrap().to_string();
    assert!(!err.contains("did you mean"), "{err}");
    #[cfg(not(feature = "mpi"))]
    for typed in ["mpi", "MPI", "Mpi:4"] {
        let err = from_config(typed).err().unwrap().to_string();
        assert!(
            err.contains("mode `mpi` needs the cargo feature `mpi`"),
            "{typed}: {err}"
        );
    }
}

/// McUtils `log_level`: a message prints when its level is at most the
/// verbosity (`Config::log_level`).
#[test]
fn log_levels_decide_what_prints() {
    let at =
        |level: LogLevel| from_config(Config::new("threads").nprocs(2).log_level(level)).unwrap();
    let normal = at(LogLevel::NORMAL);
    assert!(normal.prints(LogLevel::NORMAL) && normal.prints(LogLevel::WARNINGS));
    assert!(!normal.prints(LogLevel::DEBUG));
    let quiet = at(LogLevel::QUIET);
    assert!(!quiet.prints(LogLevel::NORMAL) && !quiet.prints(LogLevel::WARNINGS));
    let debug = at(LogLevel::DEBUG);
    assert!(debug.prints(LogLevel::DEBUG) && !debug.prints(LogLevel::MORE_DEBUG));
    // Rank handles (and their groups) follow their parallelizer.
    let inside = quiet
        .run(
            |p: &dyn Parallelizer, ()| {
                let g = p.split(Some(0), 0).unwrap().unwrap();
                p.gather(p.prints(LogLevel::NORMAL) || g.prints(LogLevel::NORMAL))
                    .unwrap()
            },
            (),
        )
        .unwrap();
    assert_eq!(inside, Some(vec![false, false]));
    for (text, level) in [
        ("quiet", LogLevel::QUIET),
        ("Warnings", LogLevel::WARNINGS),
        ("MoreDebug", LogLevel::MORE_DEBUG),
        ("more-debug", LogLevel::MORE_DEBUG),
        ("75", LogLevel(75)),
    ] {
        assert_eq!(text.parse::<LogLevel>().unwrap(), level, "{text}");
    }
    assert!("loud".parse::<LogLevel>().is_err());
}

#[parallelizer::task]
fn print_at_levels(par: &dyn Parallelizer, (): ()) {
    par.print(Where::Both, format!("normal from {}", par.id()));
    par.log(
        LogLevel::WARNINGS,
        Where::Worker,
        format!("warning from {}", par.id()),
    );
    par.log(
        LogLevel::DEBUG,
        Where::Both,
        format!("debug from {}", par.id()),
    );
    par.wait().unwrap();
}

/// The child half of `log_levels_filter_what_ranks_print`: prints from
/// every rank of a `processes:3` region, with the verbosity of its
/// environment (`PARALLELIZER_LOG`, or `CHILD_LOG_LEVEL` as the config's).
#[parallelizer::test]
fn print_child() {
    let Ok(mode) = std::env::var("PARALLELIZER_TEST_PRINT_CHILD") else {
        return; // run by the parent test only
    };
    let mut config = Config::new(mode).nprocs(3);
    if let Ok(level) = std::env::var("CHILD_LOG_LEVEL") {
        config = config.log_level(level.parse().unwrap());
    }
    from_config(config)
        .unwrap()
        .run(print_at_levels, ())
        .unwrap();
}

/// What a child running `print_child` in `mode` printed, sorted.
#[cfg(target_os = "linux")]
fn child_prints(mode: &str, env: &[(&str, &str)]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "parity::print_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("PARALLELIZER_TEST_PRINT_CHILD", mode)
    .env_remove("PARALLELIZER_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" from "))
        // libtest's own `test NAME ... ` may start main's first line.
        .map(|l| l.rsplit_once(" ... ").map_or(l, |(_, rest)| rest))
        // The worker's pid changes from run to run.
        .map(|l| {
            let cut = l.find(" (").zip(l.find("): ")).map(|(a, b)| (a, b + 1));
            match cut {
                Some((a, b)) => format!("{}{}", &l[..a], &l[b..]),
                None => l.to_string(),
            }
        })
        .collect();
    lines.sort();
    lines
}

/// The log level filters what main and every worker print, set in the
/// configuration or by `PARALLELIZER_LOG`; on processes each worker line
/// carries one prefix (McUtils' `On Worker N (pid):`), not two.
#[cfg(target_os = "linux")]
#[parallelizer::test]
fn log_levels_filter_what_ranks_print() {
    let _spawns = crate::common::procs::spawns();
    let normal = [
        "On Worker 1: normal from 1",
        "On Worker 1: warning from 1",
        "On Worker 2: normal from 2",
        "On Worker 2: warning from 2",
        "normal from 0",
    ];
    for mode in ["threads", "processes"] {
        assert_eq!(child_prints(mode, &[]), normal, "{mode}");
        let warnings = child_prints(mode, &[("PARALLELIZER_LOG", "warnings")]);
        assert_eq!(
            warnings,
            ["On Worker 1: warning from 1", "On Worker 2: warning from 2"],
            "{mode}"
        );
        assert_eq!(
            child_prints(mode, &[("CHILD_LOG_LEVEL", "quiet")]),
            Vec::<String>::new(),
            "{mode}"
        );
        let debug = child_prints(mode, &[("CHILD_LOG_LEVEL", "debug")]);
        assert_eq!(debug.len(), 8, "{mode}: {debug:?}");
        // The configuration wins over the environment.
        let both = child_prints(
            mode,
            &[("CHILD_LOG_LEVEL", "normal"), ("PARALLELIZER_LOG", "quiet")],
        );
        assert_eq!(both, normal, "{mode}");
    }
}
