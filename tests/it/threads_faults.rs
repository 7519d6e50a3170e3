//! Failure semantics of the threads backend: nothing hangs, nothing is lost.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parallelizer::prelude::*;
use parallelizer::{Op, Wait};

static FINISHED: AtomicUsize = AtomicUsize::new(0);

/// Rank 2 panics while main waits in `gather`; every rank records that it
/// left the task (normally or by unwinding).
fn panic_on_two(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            FINISHED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _leave = Leave;
    if par.id() == 2 {
        std::thread::sleep(Duration::from_millis(50));
        panic!("boom on rank 2");
    }
    par.gather(par.id()).unwrap()
}

#[test]
fn a_worker_panic_during_gather_is_reported_and_releases_everyone() {
    let par = from_config("threads:4").unwrap();
    let _entered = par.enter().unwrap();
    FINISHED.store(0, Ordering::SeqCst);
    let start = Instant::now();
    let err = par.run(panic_on_two, ()).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    match err {
        Error::WorkerPanicked { rank, message } => {
            assert_eq!(rank, 2);
            assert_eq!(message, "boom on rank 2");
        }
        other => panic!("expected WorkerPanicked, got {other:?}"),
    }
    // `run` returned only after every rank left the region.
    assert_eq!(FINISHED.load(Ordering::SeqCst), 4);
    // The same worker threads serve the next region.
    let ids = par
        .run(|p: &dyn Parallelizer, ()| p.gather(p.id()).unwrap(), ())
        .unwrap();
    assert_eq!(ids, Some(vec![0, 1, 2, 3]));
}

#[test]
fn an_err_on_rank_three_is_task_failed() {
    let par = from_config("threads:4").unwrap();
    let err = par
        .try_run(
            |p: &dyn Parallelizer, limit: usize| {
                if p.id() == 3 {
                    return Err(format!("rank 3 got {limit}, too small"));
                }
                let data = p.on_main().then(|| vec![1u8; limit]);
                p.scatter(data).map_err(|e| e.to_string())?;
                p.gather(1).map_err(|e| e.to_string())
            },
            7,
        )
        .unwrap_err();
    match err {
        Error::TaskFailed { rank: 3, message } => assert_eq!(message, "rank 3 got 7, too small"),
        other => panic!("expected TaskFailed on 3, got {other:?}"),
    }
}

#[test]
fn a_receive_times_out_with_the_configured_timeout() {
    let config = Config::new("threads")
        .nprocs(2)
        .timeout(Duration::from_millis(100));
    let par = from_config(&config).unwrap();
    let start = Instant::now();
    let err = par
        .try_run(
            |p: &dyn Parallelizer, ()| {
                if p.id() == 1 {
                    std::thread::sleep(Duration::from_millis(400));
                }
                p.gather(p.id()).map_err(|e| e.to_string())
            },
            (),
        )
        .unwrap_err();
    // The timeout is the deadline of the whole region; the error names the
    // late rank (not the one that waited for it) and comes at the deadline.
    assert!(
        matches!(
            err,
            Error::Timeout {
                op: Op::Run,
                rank: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("run timed out after 100ms: rank 1 was late"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(350),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn waiting_for_a_rank_that_finished_is_an_error_not_a_hang() {
    let par = from_config("threads:3").unwrap();
    let err = par
        .run(
            |p: &dyn Parallelizer, ()| {
                // Rank 2 skips the gather that everyone else calls.
                if p.id() == 2 {
                    return Ok(None);
                }
                p.gather(p.id())
            },
            (),
        )
        .unwrap_err();
    // No timeout is configured: the wait is found hopeless and reported.
    match err {
        Error::Deadlock { waits } => assert_eq!(
            waits,
            [Wait {
                rank: 0,
                on: 2,
                op: Op::Gather,
                finished: true
            }]
        ),
        other => panic!("{other}"),
    }
}

#[test]
fn main_failing_releases_workers_blocked_in_broadcast() {
    let par = from_config("threads:4").unwrap();
    let err = par
        .try_run(
            |p: &dyn Parallelizer, ()| {
                if p.on_main() {
                    return Err("main gives up before broadcasting");
                }
                p.broadcast::<u8>(None).map(|_| ()).map_err(|_| "released")
            },
            (),
        )
        .unwrap_err();
    assert!(matches!(err, Error::TaskFailed { rank: 0, .. }), "{err}");
}

#[test]
fn main_panicking_resumes_on_main_after_releasing_workers() {
    let par = from_config("threads:3").unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        par.run(
            |p: &dyn Parallelizer, ()| {
                if p.on_main() {
                    panic!("main's own bug");
                }
                // Workers block here until the abort releases them.
                let _ = p.broadcast::<u8>(None);
            },
            (),
        )
    }));
    let panic = caught.unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"main's own bug"));
    assert_eq!(
        par.run(|p: &dyn Parallelizer, ()| p.nprocs(), ()).unwrap(),
        3
    );
}

#[test]
fn bad_ranks_and_contracts_are_errors() {
    let par = from_config("threads:2").unwrap();
    let err = par.run(
        |p: &dyn Parallelizer, ()| p.receive::<u8>(7).unwrap_err().to_string(),
        (),
    );
    assert_eq!(
        err.unwrap(),
        "invalid rank 7: this parallelizer has ranks 0..2"
    );

    let contract = Config::new("threads")
        .nprocs(3)
        .contract(["scatter", "gather"]);
    let par = from_config(&contract).unwrap();
    let ok = par.run(
        |p: &dyn Parallelizer, ()| {
            let c = p
                .scatter(p.on_main().then(|| vec![1, 2, 3, 4, 5, 6]))
                .unwrap();
            p.gather(c.len()).unwrap()
        },
        (),
    );
    assert_eq!(ok.unwrap(), Some(vec![2, 2, 2]));
    let err = par
        .run(
            |p: &dyn Parallelizer, ()| p.gather(1).unwrap_err().to_string(),
            (),
        )
        .unwrap();
    assert!(
        err.contains("rank 0 called `gather` but the contract expected `scatter`"),
        "{err}"
    );
}

#[test]
fn collectives_outside_a_region_say_where_to_call_them() {
    let par = from_config("threads:2").unwrap();
    let err = par.broadcast(Some(1)).unwrap_err().to_string();
    assert!(
        err.contains("outside a region") && err.contains("inside `run`"),
        "{err}"
    );
    let got = par.run(
        |p: &dyn Parallelizer, ()| p.broadcast::<u8>(None).unwrap_err().to_string(),
        (),
    );
    // Main passed None: main's broadcast fails at once, naming the mistake;
    // the worker waiting for main's broadcast can never get it, which is a
    // deadlock naming the wait (main finished), not a hang.
    match got {
        Err(Error::Deadlock { waits }) => assert_eq!(
            waits,
            [Wait {
                rank: 1,
                on: 0,
                op: Op::Broadcast,
                finished: true
            }]
        ),
        other => panic!("{other:?}"),
    }
    let main_err = par
        .try_run(
            |p: &dyn Parallelizer, ()| p.broadcast::<u8>(None).map(drop),
            (),
        )
        .unwrap_err();
    assert!(
        main_err
            .to_string()
            .contains("main must pass Some(data) to broadcast"),
        "{main_err}"
    );
}

#[test]
fn the_parallelizer_itself_inside_its_own_region() {
    let par = from_config("threads:3").unwrap();
    let inner = par.clone();
    let got = par
        .run(
            move |p: &dyn Parallelizer, ()| {
                // A nested run on the parallelizer (not the handle) runs on
                // every rank instead of deadlocking, and so does a pool-style map.
                let nested = inner
                    .run(|q: &dyn Parallelizer, ()| q.gather(q.id()).unwrap(), ())
                    .unwrap();
                let mapped = inner
                    .map(|x: u8| x + 1, p.on_main().then(|| vec![1, 2, 3]))
                    .unwrap();
                // Collectives on it say to use the handle.
                let err = inner.broadcast(Some(1u8)).unwrap_err().to_string();
                assert!(err.contains("call it on the rank handle"), "{err}");
                // The default inside a region is this rank's handle.
                assert_eq!(get_default().id(), p.id());
                (nested, mapped)
            },
            (),
        )
        .unwrap();
    assert_eq!(got, (Some(vec![0, 1, 2]), Some(vec![2, 3, 4])));
}
