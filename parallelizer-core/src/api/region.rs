//! Regions: `run` and `try_run`.

use std::fmt::Display;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::parallelizer::{LocalTask, Parallelizer, Region};
use crate::task::{TaskKind, region_task};

impl dyn Parallelizer {
    /// Runs `task(rank, args)` on every rank (an SPMD region) and returns
    /// main's result. The region enters this parallelizer for its duration.
    ///
    /// Serial and threads run any `'static` closure; processes and MPI need a
    /// `#[parallelizer::task]` fn. A panic on any rank is
    /// [`Error::WorkerPanicked`] here (main's own panic resumes on main), and
    /// every other rank is released.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// fn total(par: &dyn Parallelizer, n: u64) -> Option<u64> {
    ///     let data = par.on_main().then(|| (1..=n).collect::<Vec<u64>>());
    ///     let mine: u64 = par.scatter(data).unwrap().iter().sum();
    ///     par.gather(mine).unwrap().map(|v| v.iter().sum())
    /// }
    /// let par = from_config("threads:4").unwrap();
    /// assert_eq!(par.run(total, 100).unwrap(), Some(5050));
    /// ```
    pub fn run<A, R, F>(&self, task: F, args: A) -> Result<R>
    where
        A: Data,
        R: Send + 'static,
        F: Fn(&dyn Parallelizer, A) -> R + Send + Sync + 'static,
    {
        let local: LocalTask = Arc::new(move |p: &dyn Parallelizer, args: Msg| {
            Ok(Msg::local(task(p, args.into_value::<A>()?)))
        });
        self.run_local::<F, R>(local, Msg::serde(args))
    }

    /// `run` for tasks that return `Result`: an `Err` on any
    /// rank is [`Error::TaskFailed`] with that rank and the error's message,
    /// and releases the other ranks.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Error, Parallelizer};
    /// let par = from_config("threads:4").unwrap();
    /// let err = par.try_run(|p: &dyn Parallelizer, ()| {
    ///     if p.id() == 3 { return Err("bad input on 3".to_string()); }
    ///     p.gather(p.id()).map_err(|e| e.to_string())
    /// }, ()).unwrap_err();
    /// assert!(matches!(err, Error::TaskFailed { rank: 3, .. }), "{err}");
    /// ```
    pub fn try_run<A, T, E, F>(&self, task: F, args: A) -> Result<T>
    where
        A: Data,
        T: Send + 'static,
        E: Display,
        F: Fn(&dyn Parallelizer, A) -> std::result::Result<T, E> + Send + Sync + 'static,
    {
        let local: LocalTask = Arc::new(move |p: &dyn Parallelizer, args: Msg| {
            match task(p, args.into_value::<A>()?) {
                Ok(v) => Ok(Msg::local(v)),
                Err(e) => Err(Error::TaskFailed {
                    rank: p.id(),
                    message: e.to_string(),
                }),
            }
        });
        self.run_local::<F, T>(local, Msg::serde(args))
    }

    fn run_local<F, R: Send + 'static>(&self, local: LocalTask, args: Msg) -> Result<R> {
        let task = region_task::<F>(local, |kind| matches!(kind, TaskKind::Region(_)));
        let _entered = self.enter()?;
        self.run_region(Region::new(task, args))?.into_local::<R>()
    }
}
