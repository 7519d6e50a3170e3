//! `Config::initializer`: a registered task run once on every rank when the
//! parallelizer starts (McUtils `initialization_function`).

use std::sync::atomic::{AtomicUsize, Ordering};

use parallelizer::prelude::*;

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[parallelizer::task]
fn count_call(_: &dyn Parallelizer, (): ()) {
    CALLS.fetch_add(1, Ordering::SeqCst);
}

#[parallelizer::task]
fn refuse(par: &dyn Parallelizer, (): ()) -> std::result::Result<(), String> {
    if par.id() == 1 {
        Err("rank 1 cannot open its scratch file".into())
    } else {
        Ok(())
    }
}

#[test]
fn the_initializer_runs_once_per_rank_at_enter_and_its_failure_fails_enter() {
    let par = from_config(
        Config::new("threads")
            .nprocs(3)
            .initializer("it::initializer::count_call"),
    )
    .unwrap();
    {
        let _entered = par.enter().unwrap();
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
        par.run(|p: &dyn Parallelizer, ()| p.wait().unwrap(), ())
            .unwrap();
        let _nested = par.enter().unwrap();
        assert_eq!(
            CALLS.load(Ordering::SeqCst),
            3,
            "only the outermost enter initializes"
        );
    }

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
    assert!(!par.core().is_active());

    let par = from_config(
        Config::new("threads")
            .nprocs(2)
            .initializer("it::initializer::nope"),
    )
    .unwrap();
    let err = par.enter().err().unwrap().to_string();
    assert!(
        err.contains("`it::initializer::nope` is not registered")
            && err.contains("#[parallelizer::task]"),
        "{err}"
    );
}
