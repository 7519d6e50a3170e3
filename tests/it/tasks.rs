//! `#[parallelizer::task]`: registration by module path, lookup by name and
//! by fn, deterministic order, and worker ranks running the registered
//! invoker (its `Err` becomes `Error::TaskFailed` with the rank).

use parallelizer::backend::{TaskEntry, TaskKind};
use parallelizer::{Error, Parallelizer};

mod registered {
    use parallelizer::Parallelizer;

    /// A region task with a tuple pattern for its arguments.
    #[parallelizer::task]
    pub fn greet(par: &dyn Parallelizer, (greeting, times): (String, u32)) -> Option<Vec<String>> {
        let mine = format!("{greeting} x{times} from {}", par.id());
        par.gather(mine).unwrap()
    }

    /// Fails on rank 2 only: the registered invoker turns the `Err` into
    /// `Error::TaskFailed { rank: 2 }`.
    #[parallelizer::task]
    pub fn fails_on_2(par: &dyn Parallelizer, (): ()) -> Result<usize, String> {
        if par.id() == 2 {
            return Err("rank 2 refuses".to_string());
        }
        Ok(par.id())
    }

    /// A map task.
    #[parallelizer::task]
    pub fn square(x: u64) -> u64 {
        x * x
    }
}

#[parallelizer::task]
fn sum_scatter(par: &dyn Parallelizer, n: u64) -> std::io::Result<Option<u64>> {
    let mine: u64 = par
        .scatter(par.on_main().then(|| (1..=n).collect()))
        .map_err(std::io::Error::other)?
        .iter()
        .sum();
    Ok(par
        .gather(mine)
        .map_err(std::io::Error::other)?
        .map(|v| v.iter().sum()))
}

fn entry_of<F>(_: F) -> Option<&'static TaskEntry> {
    parallelizer::backend::task_of::<F>()
}

#[test]
fn found_by_path_and_by_fn() {
    let greet = parallelizer::backend::task_by_path("it::tasks::registered::greet").unwrap();
    assert!(matches!(greet.kind, TaskKind::Region(_)));
    assert!(std::ptr::eq(entry_of(registered::greet).unwrap(), greet));
    let square = parallelizer::backend::task_by_path("it::tasks::registered::square").unwrap();
    assert!(matches!(square.kind, TaskKind::Map(_)));
    assert!(std::ptr::eq(entry_of(registered::square).unwrap(), square));
    assert_eq!(
        entry_of(sum_scatter).unwrap().path,
        "it::tasks::sum_scatter"
    );
    // A plain fn or a closure has no registration.
    fn plain(_: &dyn Parallelizer, (): ()) {}
    assert!(entry_of(plain).is_none());
    assert!(entry_of(|x: u32| x).is_none());
    assert!(matches!(
        parallelizer::backend::task_by_path("it::tasks::nope"),
        Err(Error::TaskNotRegistered { .. })
    ));
}

#[test]
fn sorted_dense_ids() {
    // Every module of this test binary registers tasks: the whole table is
    // sorted by path, and this module's are exactly these, in order.
    let all: Vec<&str> = parallelizer::backend::tasks()
        .iter()
        .map(|t| t.path)
        .collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    let paths: Vec<&str> = all
        .into_iter()
        .filter(|p| p.starts_with("it::tasks::"))
        .collect();
    assert_eq!(
        paths,
        [
            "it::tasks::invoke",
            "it::tasks::registered::fails_on_2",
            "it::tasks::registered::greet",
            "it::tasks::registered::square",
            "it::tasks::sum_scatter",
        ]
    );
    for (id, task) in parallelizer::backend::tasks().iter().enumerate() {
        assert_eq!(task.id() as usize, id);
        assert!(std::ptr::eq(
            parallelizer::backend::task_by_id(id as u32).unwrap(),
            *task
        ));
    }
}

#[test]
fn still_callable_directly() {
    let serial = parallelizer::from_config("serial").unwrap();
    assert_eq!(registered::square(7), 49);
    assert_eq!(
        registered::greet(&*serial, ("hi".into(), 2)),
        Some(vec!["hi x2 from 0".to_string()])
    );
}

#[test]
fn run_on_threads_3() {
    let par = parallelizer::from_config("threads:3").unwrap();
    let got = par.run(registered::greet, ("hey".into(), 1)).unwrap();
    assert_eq!(
        got.unwrap(),
        ["hey x1 from 0", "hey x1 from 1", "hey x1 from 2"]
    );
    assert_eq!(par.run(sum_scatter, 10).unwrap().unwrap(), Some(55));
    assert_eq!(
        par.map(registered::square, Some((1..=5).collect()))
            .unwrap(),
        Some(vec![1, 4, 9, 16, 25])
    );
}

#[test]
fn err_on_rank_2_is_task_failed() {
    let par = parallelizer::from_config("threads:3").unwrap();
    // Main's own value is Ok(0); rank 2's Err reaches main through the
    // registered invoker that worker ranks run.
    let err = par.run(registered::fails_on_2, ()).unwrap_err();
    match err {
        Error::TaskFailed { rank, message } => {
            assert_eq!(rank, 2);
            assert_eq!(message, "rank 2 refuses");
        }
        other => panic!("expected TaskFailed on rank 2, got {other}"),
    }
    // try_run reports it the same way.
    let err = par.try_run(registered::fails_on_2, ()).unwrap_err();
    assert!(matches!(err, Error::TaskFailed { rank: 2, .. }), "{err}");
}

/// A task may be called like the expansion's own items.
#[parallelizer::task]
fn invoke(x: u8) -> u8 {
    x + 1
}

#[test]
fn task_named_like_generated_items() {
    let entry = parallelizer::backend::task_by_path("it::tasks::invoke").unwrap();
    assert!(std::ptr::eq(entry_of(invoke).unwrap(), entry));
    let par = parallelizer::from_config("threads:2").unwrap();
    assert_eq!(
        par.map(invoke, Some(vec![1, 2, 3])).unwrap(),
        Some(vec![2, 3, 4])
    );
}
