//! The registry: defaults, entering, named parallelizers, specs, and a mode
//! name registered twice (`duplicate_backend`). These tests change the
//! process-global default (and the `PARALLELIZER` environment variable),
//! assert on it and on the entered stack, and count this process's rank
//! threads, so they take one lock and live in their own test binary: in
//! `tests/it` any test's `enter` or `threads:N` would show up here.

use std::sync::{Mutex, MutexGuard};

#[macro_use]
#[path = "../common/one_rank.rs"]
mod one_rank;

mod duplicate_backend;

use parallelizer::prelude::*;
use parallelizer::{
    Restricted, get_default, main_restricted, modes, registered_names, reset_default, set_default,
    worker_restricted,
};

fn serialized() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn default_desc() -> String {
    let d = get_default();
    format!("{}:{}", d.mode(), d.nprocs())
}

#[test]
fn nested_enters_make_the_innermost_the_default_and_restore_on_exit() {
    let _lock = serialized();
    let a = from_config("threads:2").unwrap();
    let b = from_config("threads:3").unwrap();
    assert_eq!(default_desc(), "serial:1");
    {
        let _a1 = a.enter().unwrap();
        assert_eq!(default_desc(), "threads:2");
        {
            let _a2 = a.enter().unwrap();
            assert_eq!(a.core().depth(), 2);
            {
                let _b = b.enter().unwrap();
                assert_eq!(default_desc(), "threads:3");
            }
            assert_eq!(default_desc(), "threads:2");
        }
        // Still entered once: still the default, workers still up.
        assert_eq!(default_desc(), "threads:2");
        assert!(a.core().is_active());
    }
    assert!(!a.core().is_active());
    assert_eq!(default_desc(), "serial:1");
}

#[test]
fn guards_dropped_out_of_order_remove_their_own_entry() {
    let _lock = serialized();
    let a = from_config("threads:2").unwrap();
    let b = from_config("threads:3").unwrap();
    let ga = a.enter().unwrap();
    let gb = b.enter().unwrap();
    drop(ga);
    assert_eq!(default_desc(), "threads:3");
    gb.exit().unwrap();
    assert_eq!(default_desc(), "serial:1");
}

#[test]
fn run_enters_for_its_duration_and_current_is_the_rank() {
    let _lock = serialized();
    let par = from_config("threads:3").unwrap();
    let seen = par
        .run(
            |p: &dyn Parallelizer, ()| {
                let me = current();
                assert_eq!((me.id(), me.nprocs()), (p.id(), 3));
                p.gather(get_default().nprocs()).unwrap()
            },
            (),
        )
        .unwrap();
    assert_eq!(seen, Some(vec![3, 3, 3]));
    assert_eq!(default_desc(), "serial:1");
    assert_eq!(current().mode(), "serial");
}

/// `run` on the innermost entered parallelizer only counts its depth (it is
/// the default already); on one entered further out it makes that one the
/// default for the run, and the innermost is the default again after. The
/// default is asked from a thread of main's task that is no rank (a rank
/// sees its region's handle, whatever was entered).
#[test]
fn run_makes_its_parallelizer_the_default_whether_or_not_it_is_innermost() {
    let _lock = serialized();
    let outer = from_config("threads:2").unwrap();
    let inner = from_config("threads:3").unwrap();
    let _go = outer.enter().unwrap();
    let gi = inner.enter().unwrap();
    let default_during_run = |par: &dyn Parallelizer| {
        par.run(
            |p: &dyn Parallelizer, ()| {
                p.on_main()
                    .then(|| std::thread::spawn(default_desc).join().unwrap())
            },
            (),
        )
        .unwrap()
    };
    assert_eq!(default_during_run(&*outer).as_deref(), Some("threads:2"));
    assert_eq!(default_desc(), "threads:3");
    assert_eq!(default_during_run(&*inner).as_deref(), Some("threads:3"));
    assert_eq!(default_desc(), "threads:3");
    drop(gi);
    assert_eq!(default_desc(), "threads:2");
    assert_eq!(default_during_run(&*outer).as_deref(), Some("threads:2"));
    assert_eq!(default_desc(), "threads:2");
}

/// `current()` in a region of a group made on `serial` (where every group
/// is made inside a region) is the group, even while another thread has
/// entered a parallelizer: it is this thread's, not the entered stack's.
#[test]
fn current_in_a_serial_groups_region_is_the_group() {
    let _lock = serialized();
    let group = from_config("serial").unwrap().subgroup(&[0]).unwrap();
    let seen = group
        .run(
            |_: &dyn Parallelizer, ()| {
                let other = from_config("threads:3").unwrap();
                let (entered, done) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
                let holder = std::thread::spawn(move || {
                    let _entered = other.enter().unwrap();
                    entered.0.send(()).unwrap();
                    done.1.recv().unwrap();
                });
                entered.1.recv().unwrap();
                let me = current();
                done.0.send(()).unwrap();
                holder.join().unwrap();
                (me.mode().to_string(), me.nprocs())
            },
            (),
        )
        .unwrap();
    assert_eq!(seen, ("serial".to_string(), 1));
}

#[test]
fn set_and_reset_default() {
    let _lock = serialized();
    let par = from_config("threads:2").unwrap();
    set_default(par.clone());
    assert_eq!(default_desc(), "threads:2");
    assert_eq!(lookup(None).nprocs(), 2);
    reset_default();
    assert_eq!(default_desc(), "serial:1");
}

#[test]
fn weak_registration_disappears_with_the_last_reference() {
    let _lock = serialized();
    let par = from_config("threads:4").unwrap();
    par.register("weakly-held");
    assert!(registered_names().contains(&"weakly-held".to_string()));
    assert_eq!(lookup("weakly-held").nprocs(), 4);
    assert_eq!(from_config("weakly-held").unwrap().nprocs(), 4);
    drop(par);
    assert!(!registered_names().contains(&"weakly-held".to_string()));
    assert_eq!(lookup("weakly-held").mode(), "serial");
}

#[test]
fn lookup_follows_mcutils() {
    let _lock = serialized();
    let par = from_config("threads:2").unwrap();
    // An instance is returned as is.
    assert!(std::sync::Arc::ptr_eq(&lookup(&par), &par));
    // A mode spec builds a fresh instance.
    let fresh = lookup("threads:3");
    assert_eq!((fresh.mode(), fresh.nprocs()), ("threads", 3));
    assert!(!std::sync::Arc::ptr_eq(&lookup("serial"), &get_default()));
    // Mode names in any case and McUtils' names build (McUtils meant to
    // fold case; it fell back to the default instead).
    assert_eq!(lookup("Threads").mode(), "threads");
    assert_eq!(lookup("SERIAL:1").mode(), "serial");
    // Unknown names and bad specs fall back to the default.
    for name in ["no-such-thing", "threads:abc", ""] {
        assert_eq!(lookup(name).mode(), "serial", "{name:?}");
    }
}

#[test]
fn from_config_rejects_bad_specs_with_what_is_accepted() {
    let cases = [
        ("", "empty spec; expected MODE or MODE:NPROCS"),
        ("threads:0", "asks for 0 ranks"),
        (
            "threads:abc",
            "`abc` in `threads:abc` is not a number of ranks",
        ),
        ("serial:2", "serial has exactly 1 rank"),
    ];
    for (spec, expect) in cases {
        let err = from_config(spec).unwrap_err().to_string();
        assert!(err.contains(expect), "{spec:?}: {err}");
    }
    match from_config("warp:2").unwrap_err() {
        Error::UnknownParallelizer { name, known } => {
            assert_eq!(name, "warp");
            assert!(known.contains(&"serial".into()) && known.contains(&"threads".into()));
        }
        other => panic!("{other:?}"),
    }
    let err = from_config("warp").unwrap_err().to_string();
    assert!(
        err.contains("known modes: ") && err.contains("serial") && err.contains("threads"),
        "{err}"
    );
    assert!(modes().iter().any(|m| m == "threads"));
}

#[test]
fn config_comes_from_a_job_file_and_from_the_environment() {
    let _lock = serialized();
    let job = r#"{"mode": "threads", "nprocs": 3, "timeout": 2.5, "contract": ["map"]}"#;
    let config: Config = serde_json::from_str(job).unwrap();
    assert_eq!(config.timeout, Some(std::time::Duration::from_millis(2500)));
    let par = from_config(&config).unwrap();
    assert_eq!(par.nprocs(), 3);
    assert!(serde_json::from_str::<Config>(r#"{"mode": "threads", "nproc": 3}"#).is_err());

    // SAFETY: the test holds the lock that every env-reading test takes.
    unsafe { std::env::set_var("PARALLELIZER", "threads:2") };
    let from_env = parallelizer::from_env().unwrap();
    unsafe { std::env::set_var("PARALLELIZER", "threads:x") };
    let bad = parallelizer::from_env().unwrap_err().to_string();
    unsafe { std::env::remove_var("PARALLELIZER") };
    assert_eq!(from_env.nprocs(), 2);
    assert!(
        bad.starts_with("invalid parallelizer configuration: PARALLELIZER=threads:x"),
        "{bad}"
    );
    assert_eq!(parallelizer::from_env().unwrap().mode(), "serial");
}

/// McUtils reference 1.4.5: main gets `mainr(1) -> ('main', 1)` and
/// `workr(2) -> InMainProcess`; each worker the mirror image.
#[test]
fn restricted_plain_fns_on_every_rank() {
    let _lock = serialized();
    type Row = (
        Restricted<(String, usize)>,
        Restricted<(String, usize, usize)>,
    );
    let par = from_config("threads:4").unwrap();
    let rows = par.run(
        |p: &dyn Parallelizer, ()| {
            let mainr = main_restricted(p, || ("main".to_string(), 1));
            let workr = worker_restricted(p, || ("worker".to_string(), 2, p.id()));
            p.gather::<Row>((mainr, workr)).unwrap()
        },
        (),
    );
    let rows = rows.unwrap().unwrap();
    assert_eq!(
        rows[0],
        (
            Restricted::Ran(("main".into(), 1)),
            Restricted::InMainProcess
        )
    );
    for (id, row) in rows.iter().enumerate().skip(1) {
        assert_eq!(
            *row,
            (
                Restricted::InWorkerProcess,
                Restricted::Ran(("worker".into(), 2, id))
            )
        );
    }
    let serial = get_default();
    assert!(main_restricted(&*serial, || ()).is_ran());
    assert_eq!(
        worker_restricted(&*serial, || ()),
        Restricted::InMainProcess
    );
}

/// Rank threads of this process, read from /proc (names are cut to 15
/// bytes). A new thread names itself once it runs, and a joined one is gone
/// at once, so this polls briefly for the count to settle on `expect`.
fn rank_threads(expect: usize) -> usize {
    let count = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.starts_with("parallelizer-ra"))
            .count()
    };
    for _ in 0..200 {
        if count() == expect {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    count()
}

#[test]
fn worker_threads_live_from_the_outermost_enter_to_its_drop() {
    let _lock = serialized();
    let before = rank_threads(0);
    let par = from_config("threads:4").unwrap();
    {
        let _outer = par.enter().unwrap();
        assert_eq!(rank_threads(before + 3), before + 3);
        let failed = par.run(
            |p: &dyn Parallelizer, ()| assert!(p.on_main(), "a failed region keeps the pool"),
            (),
        );
        assert!(matches!(failed, Err(Error::WorkerPanicked { .. })));
        {
            let _inner = par.enter().unwrap();
            par.run(|p: &dyn Parallelizer, ()| p.wait().unwrap(), ())
                .unwrap();
        }
        assert_eq!(rank_threads(before + 3), before + 3);
    }
    assert_eq!(rank_threads(before), before, "finalize joined the workers");
    // `run` without an outer enter starts and joins them itself.
    par.run(|p: &dyn Parallelizer, ()| p.wait().unwrap(), ())
        .unwrap();
    assert_eq!(rank_threads(before), before);
}
