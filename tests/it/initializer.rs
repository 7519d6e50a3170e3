//! `Config::initializer`: a registered task run once on every rank, main
//! included, when the parallelizer starts (McUtils `initialization_function`
//! with `initialization_args`), on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[cfg(target_os = "linux")]
use crate::common::procs::spawns;
use parallelizer::prelude::*;

/// Calls of `count_call` per rank, in this process (a processes worker
/// counts its own calls in its own copy).
static CALLS: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
/// The arguments every call got, in this process.
static SEEN: Mutex<Vec<(usize, String, u32)>> = Mutex::new(Vec::new());

#[parallelizer::task]
fn count_call(par: &dyn Parallelizer, (label, n): (String, u32)) {
    CALLS[par.id()].fetch_add(1, Ordering::SeqCst);
    SEEN.lock().unwrap().push((par.id(), label, n));
}

/// Every rank's count of initializer calls, in rank order.
#[parallelizer::task]
fn counts(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    let mine = CALLS[par.id()].load(Ordering::SeqCst);
    par.gather(mine).unwrap()
}

/// Every rank's arguments as its initializer got them.
#[parallelizer::task]
fn seen(par: &dyn Parallelizer, (): ()) -> Option<Vec<(String, u32)>> {
    let mine = SEEN
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(rank, _, _)| *rank == par.id())
        .map(|(_, label, n)| (label.clone(), *n))
        .unwrap();
    par.gather(mine).unwrap()
}

#[parallelizer::task]
fn refuse(par: &dyn Parallelizer, (): ()) -> std::result::Result<(), String> {
    if par.id() == 1 {
        Err("rank 1 cannot open its scratch file".into())
    } else {
        Ok(())
    }
}

fn counted(mode: &str, n: usize) -> Arc<dyn Parallelizer> {
    let mut config = Config::new(mode)
        .initializer_with("it::initializer::count_call", ("scratch".to_string(), 7u32))
        .unwrap();
    if mode != "serial" {
        config = config.nprocs(n);
    }
    from_config(config).unwrap()
}

fn reset() {
    for c in &CALLS {
        c.store(0, Ordering::SeqCst);
    }
}

/// Once on every rank, main included, with its arguments; nested enters
/// and regions do not run it again. Serial, threads and processes (MPI:
/// the `mpi_suite`).
#[parallelizer::test]
fn the_initializer_runs_once_on_every_rank_with_its_arguments() {
    let modes: &[(&str, usize)] = if cfg!(target_os = "linux") {
        &[("serial", 1), ("threads", 3), ("processes", 3)]
    } else {
        &[("serial", 1), ("threads", 3)]
    };
    #[cfg(target_os = "linux")]
    let _spawns = spawns();
    for &(mode, n) in modes {
        reset();
        let par = counted(mode, n);
        let _entered = par.enter().unwrap();
        assert_eq!(par.run(counts, ()).unwrap(), Some(vec![1; n]), "{mode}");
        let _nested = par.enter().unwrap();
        assert_eq!(par.run(counts, ()).unwrap(), Some(vec![1; n]), "{mode}");
        assert_eq!(
            par.run(seen, ()).unwrap(),
            Some(vec![("scratch".to_string(), 7); n]),
            "{mode}"
        );
    }
}

#[parallelizer::test]
fn a_failing_initializer_fails_enter() {
    let par = from_config(
        Config::new("threads")
            .nprocs(3)
            .initializer("it::initializer::refuse"),
    )
    .unwrap();
    match par.enter() {
        Err(Error::TaskFailed { rank: 1, message }) => assert!(message.contains("scratch file")),
        other => panic!("expected the initializer's failure, got {:?}", other.err()),
    }
    assert!(!par.is_active());
}

/// A misspelled path fails when the parallelizer is built, on every
/// backend, naming the path, the nearest task and the registered ones.
#[test]
fn a_misspelled_initializer_names_the_registered_tasks() {
    let modes: &[&str] = if cfg!(target_os = "linux") {
        &["serial", "threads:2", "processes:2"]
    } else {
        &["serial", "threads:2"]
    };
    for mode in modes {
        let config: Config = mode.parse().unwrap();
        let err = from_config(config.initializer("it::initializer::count_cal"))
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(matches!(err, Error::Config(_)), "{mode}: {err:?}");
        for part in [
            "initializer `it::initializer::count_cal` is not a registered task",
            "(did you mean `it::initializer::count_call`?)",
            "#[parallelizer::task]",
            "registered tasks: it::",
        ] {
            assert!(text.contains(part), "{mode}: {text}");
        }
        assert!(!text.contains("parallelizer_core::"), "{text}");
    }
}
