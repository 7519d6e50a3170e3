//! Regions: `run`, `try_run`, `run_with` (main-only arguments) and
//! `apply` (a region of a parallelizer already entered).

use std::fmt::Display;
use std::sync::{Arc, Mutex};

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

    /// `run` with arguments that only main's call gets (McUtils
    /// `main_kwargs`): every rank's task receives `(args, main_args)`, where
    /// `main_args` is `Some` on main and `None` on the workers. Main's
    /// arguments never leave main, so they need not be small.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// fn total(par: &dyn Parallelizer, (scale, data): (u64, Option<Vec<u64>>)) -> Option<u64> {
    ///     let mine: u64 = par.scatter(data).unwrap().iter().map(|x| x * scale).sum();
    ///     par.gather(mine).unwrap().map(|v| v.iter().sum())
    /// }
    /// let par = from_config("threads:3").unwrap();
    /// assert_eq!(par.run_with(total, 2, (1..=10).collect()).unwrap(), Some(110));
    /// ```
    pub fn run_with<A, M, R, F>(&self, task: F, args: A, main_args: M) -> Result<R>
    where
        A: Data,
        M: Data,
        R: Send + 'static,
        F: Fn(&dyn Parallelizer, (A, Option<M>)) -> R + Send + Sync + 'static,
    {
        let _entered = self.enter_for_run()?;
        self.apply_with(task, args, main_args)
    }

    /// Runs `task(rank, args)` on every rank of this parallelizer, which
    /// must already be entered (McUtils `apply`; `run` is `enter` +
    /// `apply`). On a rank handle inside a region it runs the task on that
    /// rank and returns its result.
    ///
    /// Unlike `run`, `apply` never starts or stops workers: outside an
    /// `enter` it is a [`Error::ContractViolation`] saying so, on every
    /// backend.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// assert!(par.apply(|p: &dyn Parallelizer, ()| p.id(), ()).is_err());
    /// let _entered = par.enter().unwrap();
    /// let ids = par.apply(|p: &dyn Parallelizer, ()| p.gather(p.id()).unwrap(), ()).unwrap();
    /// assert_eq!(ids, Some(vec![0, 1, 2]));
    /// ```
    pub fn apply<A, R, F>(&self, task: F, args: A) -> Result<R>
    where
        A: Data,
        R: Send + 'static,
        F: Fn(&dyn Parallelizer, A) -> R + Send + Sync + 'static,
    {
        let local: LocalTask = Arc::new(move |p: &dyn Parallelizer, args: Msg| {
            Ok(Msg::local(task(p, args.into_value::<A>()?)))
        });
        self.apply_local::<F, R>(local, Msg::new(args))
    }

    /// `apply` with arguments that only main's call gets; see
    /// `run_with`.
    pub fn apply_with<A, M, R, F>(&self, task: F, args: A, main_args: M) -> Result<R>
    where
        A: Data,
        M: Data,
        R: Send + 'static,
        F: Fn(&dyn Parallelizer, (A, Option<M>)) -> R + Send + Sync + 'static,
    {
        // Main's arguments ride in main's closure; what the workers get
        // (and what travels to processes) is `(args, None)`.
        let main_args = Mutex::new(Some(main_args));
        let local: LocalTask = Arc::new(move |p: &dyn Parallelizer, args: Msg| {
            let (args, _) = args.into_value::<(A, Option<M>)>()?;
            let mine = if p.on_main() {
                let taken = main_args.lock().unwrap_or_else(|e| e.into_inner()).take();
                Some(taken.ok_or_else(|| {
                    Error::ContractViolation(
                        "main's arguments were used up by an earlier run".into(),
                    )
                })?)
            } else {
                None
            };
            Ok(Msg::local(task(p, (args, mine))))
        });
        self.apply_local::<F, R>(local, Msg::new((args, None::<M>)))
    }

    fn run_local<F, R: Send + 'static>(&self, local: LocalTask, args: Msg) -> Result<R> {
        let _entered = self.enter_for_run()?;
        self.apply_local::<F, R>(local, args)
    }

    fn apply_local<F, R: Send + 'static>(&self, local: LocalTask, args: Msg) -> Result<R> {
        if !self.is_active() {
            return Err(Error::ContractViolation(format!(
                "`apply` on the `{}` parallelizer, which is not entered: `apply` runs on \
                 workers that are already up; call `enter()` first, or use `run` \
                 (which is `enter` + `apply`)",
                self.mode()
            )));
        }
        let task = region_task::<F>(local, |kind| matches!(kind, TaskKind::Region(_)));
        self.run_region(Region::new(task, args))?.into_local::<R>()
    }
}
