//! `#[main_restricted]` / `#[worker_restricted]` on every kind of fn, on
//! serial and on every rank of `threads:4` (McUtils reference 1.4.5).
#![deny(warnings)]

use std::fmt::Display;
use std::sync::Arc;

use parallelizer::{
    AsParallelizer, Config, Parallelizer, Restricted, main_restricted, worker_restricted,
};

/// McUtils `mainr`.
#[main_restricted]
fn mainr(par: &dyn Parallelizer, x: u32) -> (&'static str, u32) {
    let _ = par;
    ("main", x)
}

/// McUtils `workr`.
#[worker_restricted]
fn workr(par: &dyn Parallelizer, x: u32) -> (&'static str, u32, usize) {
    ("worker", x, par.id())
}

/// No parallelizer parameter: the rank comes from `current()`.
#[main_restricted]
fn main_from_current() -> usize {
    parallelizer::current().id()
}

#[worker_restricted]
fn worker_from_current() -> usize {
    parallelizer::current().id()
}

/// Unit fns, called as statements below under `deny(warnings)`.
#[main_restricted]
fn log_on_main(par: &dyn Parallelizer) {
    let _ = par.id();
}

#[worker_restricted]
fn log_on_workers(_par: &dyn Parallelizer) {}

/// `return` and `?` keep their meaning inside the body.
#[main_restricted]
fn parse_all(par: &Arc<dyn Parallelizer>, items: &[&str]) -> Result<u32, std::num::ParseIntError> {
    let _ = par;
    let mut sum = 0;
    for s in items {
        if s.is_empty() {
            return Ok(u32::MAX);
        }
        sum += s.parse::<u32>()?;
    }
    Ok(sum)
}

/// Generic over the parallelizer, with a where clause.
#[worker_restricted]
fn generic_rank<P, T>(par: &P, value: T) -> String
where
    P: AsParallelizer + ?Sized,
    T: Display,
{
    format!("{value} on {}", par.as_parallelizer().id())
}

/// Generic over a concrete backend type.
#[main_restricted]
fn concrete_rank<P: Parallelizer>(par: &P) -> usize {
    par.id()
}

/// `impl Trait` in return position and a named lifetime.
#[main_restricted]
fn shown<'a>(par: &'a dyn Parallelizer, label: &'a str) -> impl Display + 'a {
    format!("{label}:{}", par.nprocs())
}

struct Counter {
    hits: u32,
    name: String,
}

impl Counter {
    #[main_restricted]
    fn bump(&mut self, par: &dyn Parallelizer) -> u32 {
        self.hits += 1;
        self.hits
    }

    /// Elided lifetime in the return type.
    #[main_restricted]
    fn name(&self, par: &dyn Parallelizer) -> &str {
        &self.name
    }

    #[worker_restricted]
    fn into_name(self, par: Arc<dyn Parallelizer>) -> String {
        self.name
    }

    /// Associated fn, rank from an explicit expression.
    #[main_restricted(par = parallelizer::get_default())]
    fn make(name: &str) -> Counter {
        Counter {
            hits: 0,
            name: name.to_string(),
        }
    }

    /// A `#[par]` parameter whose type the rule does not recognise.
    #[worker_restricted]
    fn marked(&self, #[par] handle: &Handle) -> u32 {
        self.hits
    }
}

/// A wrapper that the guard can ask through `par = self.0`.
struct Handle(Arc<dyn Parallelizer>);

impl Handle {
    #[main_restricted(par = self.0)]
    fn on_main_only(&self) -> bool {
        true
    }
}

impl AsParallelizer for Handle {
    fn as_parallelizer(&self) -> &dyn Parallelizer {
        &*self.0
    }
}

#[test]
fn serial_main_runs_worker_does_not() {
    let par = parallelizer::from_config("serial").unwrap();
    assert_eq!(mainr(&*par, 1), Restricted::Ran(("main", 1)));
    assert_eq!(workr(&*par, 2), Restricted::InMainProcess);
    assert_eq!(main_from_current(), Restricted::Ran(0));
    assert_eq!(worker_from_current(), Restricted::InMainProcess);
    log_on_main(&*par);
    log_on_workers(&*par);
    assert_eq!(parse_all(&par, &["1", "2"]), Restricted::Ran(Ok(3)));
    assert_eq!(parse_all(&par, &["1", ""]), Restricted::Ran(Ok(u32::MAX)));
    assert!(matches!(parse_all(&par, &["x"]), Restricted::Ran(Err(_))));
    assert_eq!(generic_rank(&*par, 5), Restricted::InMainProcess);
    let serial = parallelizer::backend::Serial::new(Config::new("serial"));
    assert_eq!(generic_rank(&serial, 5), Restricted::InMainProcess);
    assert_eq!(concrete_rank(&serial), Restricted::Ran(0));
    assert_eq!(shown(&*par, "n").unwrap().to_string(), "n:1");
    let mut c = Counter::make("c").unwrap();
    assert_eq!(c.bump(&*par), Restricted::Ran(1));
    assert_eq!(c.name(&*par), Restricted::Ran("c"));
    let h = Handle(par.clone());
    assert_eq!(c.marked(&h), Restricted::InMainProcess);
    assert_eq!(h.on_main_only(), Restricted::Ran(true));
    assert_eq!(c.into_name(par), Restricted::InMainProcess);
}

/// What every rank of a region sees, gathered on main.
type Seen = (
    Restricted<(&'static str, u32)>,
    Restricted<(&'static str, u32, usize)>,
    Restricted<usize>,
    Restricted<usize>,
    Restricted<String>,
    Restricted<u32>,
    bool,
);

#[test]
fn threads_4_every_rank() {
    let par = parallelizer::from_config("threads:4").unwrap();
    let all = par
        .run(
            |p: &dyn Parallelizer, ()| {
                log_on_main(p);
                log_on_workers(p);
                // Inside a region the default is this rank's handle.
                let made = Counter::make("c");
                assert_eq!(made.is_ran(), p.on_main());
                let mut c = Counter {
                    hits: 0,
                    name: "c".into(),
                };
                let seen = (
                    mainr(p, 1),
                    workr(p, 2),
                    main_from_current(),
                    worker_from_current(),
                    generic_rank(p, "x"),
                    c.bump(p),
                    shown(p, "n").is_ran(),
                );
                // Restricted<&'static str> is not `Data`; reduce to owned values.
                let seen = (
                    seen.0.map(|(s, x)| (s.to_string(), x)),
                    seen.1.map(|(s, x, id)| (s.to_string(), x, id)),
                    seen.2,
                    seen.3,
                    seen.4,
                    seen.5,
                    seen.6,
                );
                p.gather(seen).unwrap()
            },
            (),
        )
        .unwrap()
        .unwrap();
    assert_eq!(all.len(), 4);
    for (rank, got) in all.into_iter().enumerate() {
        let got: Seen = (
            got.0.map(|(s, x)| (leak(s), x)),
            got.1.map(|(s, x, id)| (leak(s), x, id)),
            got.2,
            got.3,
            got.4,
            got.5,
            got.6,
        );
        if rank == 0 {
            assert_eq!(
                got,
                (
                    Restricted::Ran(("main", 1)),
                    Restricted::InMainProcess,
                    Restricted::Ran(0),
                    Restricted::InMainProcess,
                    Restricted::InMainProcess,
                    Restricted::Ran(1),
                    true,
                )
            );
        } else {
            assert_eq!(
                got,
                (
                    Restricted::InWorkerProcess,
                    Restricted::Ran(("worker", 2, rank)),
                    Restricted::InWorkerProcess,
                    Restricted::Ran(rank),
                    Restricted::Ran(format!("x on {rank}")),
                    Restricted::InWorkerProcess,
                    false,
                ),
                "rank {rank}"
            );
        }
    }
}

fn leak(s: String) -> &'static str {
    match s.as_str() {
        "main" => "main",
        "worker" => "worker",
        other => panic!("unexpected {other}"),
    }
}
