//! The typed API, callable on `&dyn Parallelizer` and `Arc<dyn Parallelizer>`.
//!
//! Every collective is called by every rank of a region: main passes
//! `Some(data)`, workers pass `None`, and the calls pair up in program order.

use std::any::type_name;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::op::Op;
use crate::parallelizer::{
    Job, LocalTask, NativePod, Parallelizer, PodType, Region, RegionTask, check_rank,
};
use crate::registry;
use crate::split::{chunk_sizes, concat, split};
use crate::task::{TaskKind, task_of};

/// Where `print` prints (McUtils `where=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Where {
    /// On main and on workers.
    #[default]
    Both,
    /// On main only.
    Main,
    /// On workers only.
    Worker,
}

/// A fn that takes its arguments as a tuple, for
/// `starmap`: `Fn(A, B) -> R` is
/// `Apply<(A, B)>`.
pub trait Apply<Args>: Send + Sync {
    /// The fn's return type.
    type Output;
    /// Calls the fn with the tuple's fields as arguments.
    fn apply(&self, args: Args) -> Self::Output;
}

macro_rules! impl_apply {
    ($($t:ident),+) => {
        impl<Func, Out, $($t),+> Apply<($($t,)+)> for Func
        where
            Func: Fn($($t),+) -> Out + Send + Sync,
        {
            type Output = Out;
            #[allow(non_snake_case)]
            fn apply(&self, ($($t,)+): ($($t,)+)) -> Out {
                self($($t),+)
            }
        }
    };
}
impl_apply!(A);
impl_apply!(A, B);
impl_apply!(A, B, C);
impl_apply!(A, B, C, D);
impl_apply!(A, B, C, D, E);
impl_apply!(A, B, C, D, E, G);

/// Keeps a parallelizer entered (initialized and the default) until dropped;
/// see `enter`.
#[must_use = "the parallelizer is left when the guard drops"]
pub struct EnterGuard<'a> {
    par: &'a dyn Parallelizer,
    token: Option<u64>,
    done: bool,
}

impl EnterGuard<'_> {
    /// Leaves now and reports what finalizing returned (dropping the guard
    /// does the same but can only print a failure).
    pub fn exit(mut self) -> Result<()> {
        self.leave()
    }

    fn leave(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(());
        }
        if let Some(token) = self.token {
            registry::pop_entered(token);
        }
        if self.par.core().leave_depth() == 0 {
            self.par.finalize()
        } else {
            Ok(())
        }
    }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.leave() {
            eprintln!("parallelizer: finalizing `{}` failed: {e}", self.par.mode());
        }
    }
}

fn rename_timeout<T>(op: Op, r: Result<T>) -> Result<T> {
    r.map_err(|e| match e {
        Error::Timeout { rank, after, .. } => Error::Timeout { op, rank, after },
        other => other,
    })
}

fn main_data<T>(data: Option<T>, op: &str) -> Result<T> {
    data.ok_or_else(|| {
        Error::ContractViolation(format!(
            "main must pass Some(data) to {op}; workers pass None"
        ))
    })
}

impl dyn Parallelizer {
    /// Initializes (outermost call only) and makes this parallelizer the
    /// default until the guard drops; nests. The outermost drop restores the
    /// previous default and finalizes (workers shut down and reaped).
    ///
    /// ```
    /// use parallelizer_core::{from_config, get_default};
    /// let par = from_config("threads:2").unwrap();
    /// {
    ///     let _outer = par.enter().unwrap();
    ///     let _inner = par.enter().unwrap();
    ///     assert_eq!(get_default().nprocs(), 2);
    /// }
    /// assert_eq!(get_default().mode(), "serial");
    /// ```
    pub fn enter(&self) -> Result<EnterGuard<'_>> {
        let core = self.core();
        if core.enter_depth() == 0 {
            if let Err(e) = self.initialize() {
                core.leave_depth();
                return Err(e);
            }
        }
        let token = core.this().map(registry::push_entered);
        Ok(EnterGuard {
            par: self,
            token,
            done: false,
        })
    }

    /// Registers this parallelizer under `name`, weakly: the name is gone
    /// when the last `Arc` drops (McUtils `register`).
    ///
    /// ```
    /// use parallelizer_core::{from_config, lookup};
    /// let par = from_config("threads:3").unwrap();
    /// par.register("mine");
    /// assert_eq!(lookup("mine").nprocs(), 3);
    /// drop(par);
    /// assert_eq!(lookup("mine").mode(), "serial");
    /// ```
    pub fn register(&self, name: &str) {
        if let Some(this) = self.core().this() {
            registry::register_named(name, &this);
        }
    }

    /// Sends `value` to rank `to`; pairs with `receive` there.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let got = par.run(|p: &dyn Parallelizer, ()| match p.id() {
    ///     1 => { p.send(String::from("hi from 1"), 2).unwrap(); None }
    ///     2 => Some(p.receive::<String>(1).unwrap()),
    ///     _ => None,
    /// }, ()).unwrap();
    /// assert_eq!(got, None); // main's result; rank 2 got the string
    /// ```
    pub fn send<T: Data>(&self, value: T, to: usize) -> Result<()> {
        self.send_checked(Msg::new(value), to)
    }

    /// Receives the next value rank `from` sent to this rank.
    pub fn receive<T: Data>(&self, from: usize) -> Result<T> {
        self.receive_checked(from)?.into_value()
    }

    /// `send` of plain data as raw bytes, no codec (mpi4py's `Send`).
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:2").unwrap();
    /// let got = par.run(|p: &dyn Parallelizer, ()| {
    ///     if p.on_main() { p.send_pod(vec![1.5f64; 4], 1).unwrap(); None }
    ///     else { Some(p.receive_pod::<f64>(0).unwrap()) }
    /// }, ()).unwrap();
    /// assert_eq!(got, None); // rank 1 got [1.5; 4]
    /// ```
    pub fn send_pod<T: bytemuck::Pod + Send>(&self, data: Vec<T>, to: usize) -> Result<()> {
        self.send_checked(Msg::pod(data), to)
    }

    /// Receives plain data sent with `send_pod` (mpi4py's `Recv`).
    pub fn receive_pod<T: bytemuck::Pod + Send>(&self, from: usize) -> Result<Vec<T>> {
        self.receive_checked(from)?.into_pod()
    }

    /// The checks every send makes (contract, peer, region), then the send.
    fn send_checked(&self, msg: Msg, to: usize) -> Result<()> {
        self.core().check_contract(self.id(), "send")?;
        self.point_to_point(to, "send")?;
        rename_timeout(Op::Send, self.send_msg(msg, to))
    }

    /// The checks every receive makes, then the receive.
    fn receive_checked(&self, from: usize) -> Result<Msg> {
        self.core().check_contract(self.id(), "receive")?;
        self.point_to_point(from, "receive from")?;
        rename_timeout(Op::Receive, self.recv_msg(from))
    }

    fn point_to_point(&self, peer: usize, what: &str) -> Result<()> {
        check_rank(self, peer)?;
        if peer == self.id() {
            return Err(Error::ContractViolation(format!(
                "rank {peer} tried to {what} itself; point-to-point needs two ranks"
            )));
        }
        self.require_region(what)
    }

    fn require_region(&self, op: &str) -> Result<()> {
        if self.in_region() {
            return Ok(());
        }
        if registry::rank_of(self).is_some() {
            return Err(Error::ContractViolation(format!(
                "`{op}` was called on the `{}` parallelizer itself inside one of its regions; \
                 call it on the rank handle the task receives (or `current()`)",
                self.mode()
            )));
        }
        Err(Error::ContractViolation(format!(
            "`{op}` was called on main outside a region of the {}-rank `{}` parallelizer, \
             where no other rank takes part; call it inside `run`",
            self.nprocs(),
            self.mode()
        )))
    }

    /// Main's value on every rank. Main passes `Some`, workers `None`.
    /// `Clone` lets the threads backend hand each rank a copy without
    /// serializing.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:4").unwrap();
    /// let sum = par.run(|p: &dyn Parallelizer, ()| {
    ///     let v = p.broadcast(p.on_main().then(|| vec![1, 2, 3])).unwrap();
    ///     p.gather(v.iter().sum::<i32>()).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(sum, Some(vec![6; 4]));
    /// ```
    pub fn broadcast<T: Data + Clone>(&self, value: Option<T>) -> Result<T> {
        self.core().check_contract(self.id(), "broadcast")?;
        self.broadcast_unchecked(value)
    }

    fn broadcast_unchecked<T: Data + Clone>(&self, value: Option<T>) -> Result<T> {
        if self.nprocs() == 1 {
            return main_data(value, "broadcast");
        }
        self.require_region("broadcast")?;
        let msg = if self.on_main() {
            Some(Msg::cloneable(main_data(value, "broadcast")?))
        } else {
            None
        };
        rename_timeout(Op::Broadcast, self.broadcast_msg(msg))?.into_value()
    }

    /// Splits main's vector into contiguous chunks, one per rank (the first
    /// `n % nprocs` ranks get one more item), and returns this rank's chunk.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:4").unwrap();
    /// let lens = par.run(|p: &dyn Parallelizer, ()| {
    ///     let chunk = p.scatter(p.on_main().then(|| (0..10).collect::<Vec<i32>>())).unwrap();
    ///     p.gather(chunk.len()).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(lens, Some(vec![3, 3, 2, 2]));
    /// ```
    pub fn scatter<T: Data>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        self.core().check_contract(self.id(), "scatter")?;
        self.scatter_unchecked(data)
    }

    fn scatter_unchecked<T: Data>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        if self.nprocs() == 1 {
            return main_data(data, "scatter");
        }
        self.require_region("scatter")?;
        let chunks = if self.on_main() {
            let data = main_data(data, "scatter")?;
            Some(
                split(data, self.nprocs())
                    .into_iter()
                    .map(Msg::new)
                    .collect(),
            )
        } else {
            None
        };
        rename_timeout(Op::Scatter, self.scatter_msg(chunks))?.into_value()
    }

    /// Every rank's value on main, main's first, then ranks 1.. in order;
    /// `None` on workers.
    pub fn gather<T: Data>(&self, value: T) -> Result<Option<Vec<T>>> {
        self.core().check_contract(self.id(), "gather")?;
        self.gather_unchecked(value)
    }

    fn gather_unchecked<T: Data>(&self, value: T) -> Result<Option<Vec<T>>> {
        if self.nprocs() == 1 {
            return Ok(Some(vec![value]));
        }
        self.require_region("gather")?;
        match rename_timeout(Op::Gather, self.gather_msg(Msg::new(value)))? {
            None => Ok(None),
            Some(all) => all
                .into_iter()
                .map(Msg::into_value)
                .collect::<Result<_>>()
                .map(Some),
        }
    }

    /// `broadcast` of plain data as raw bytes, no codec
    /// (mpi4py's `Bcast`).
    pub fn broadcast_pod<T: bytemuck::Pod + Send>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        self.core().check_contract(self.id(), "broadcast")?;
        if self.nprocs() == 1 {
            return main_data(data, "broadcast_pod");
        }
        self.require_region("broadcast_pod")?;
        if let Some(native) = self.native_pod() {
            return rename_timeout(
                Op::Broadcast,
                native_broadcast(native, self.on_main(), data),
            );
        }
        let msg = if self.on_main() {
            Some(Msg::pod(main_data(data, "broadcast_pod")?))
        } else {
            None
        };
        rename_timeout(Op::Broadcast, self.broadcast_msg(msg))?.into_pod()
    }

    /// `scatter` of plain data as raw bytes (mpi4py's `Scatterv`).
    pub fn scatter_pod<T: bytemuck::Pod + Send>(&self, data: Option<Vec<T>>) -> Result<Vec<T>> {
        self.core().check_contract(self.id(), "scatter")?;
        if self.nprocs() == 1 {
            return main_data(data, "scatter_pod");
        }
        self.require_region("scatter_pod")?;
        if let Some(native) = self.native_pod() {
            let (id, nprocs) = (self.id(), self.nprocs());
            return rename_timeout(Op::Scatter, native_scatter(native, id, nprocs, data));
        }
        let chunks = if self.on_main() {
            let data = main_data(data, "scatter_pod")?;
            Some(
                split(data, self.nprocs())
                    .into_iter()
                    .map(Msg::pod)
                    .collect(),
            )
        } else {
            None
        };
        rename_timeout(Op::Scatter, self.scatter_msg(chunks))?.into_pod()
    }

    /// Every rank's plain data concatenated in rank order on main, `None` on
    /// workers (mpi4py's `Gatherv`); the inverse of `scatter_pod`.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let back = par.run(|p: &dyn Parallelizer, ()| {
    ///     let data = p.on_main().then(|| (0..10).map(f64::from).collect::<Vec<_>>());
    ///     let mine: Vec<f64> = p.scatter_pod(data).unwrap().iter().map(|x| x * x).collect();
    ///     p.gather_pod(mine).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(back.unwrap()[9], 81.0);
    /// ```
    pub fn gather_pod<T: bytemuck::Pod + Send>(&self, data: Vec<T>) -> Result<Option<Vec<T>>> {
        self.core().check_contract(self.id(), "gather")?;
        if self.nprocs() == 1 {
            return Ok(Some(data));
        }
        self.require_region("gather_pod")?;
        if let Some(native) = self.native_pod() {
            return rename_timeout(Op::Gather, native_gather(native, self.on_main(), data));
        }
        match rename_timeout(Op::Gather, self.gather_msg(Msg::pod(data)))? {
            None => Ok(None),
            Some(all) => {
                let parts = all
                    .into_iter()
                    .map(Msg::into_pod::<T>)
                    .collect::<Result<_>>()?;
                Ok(Some(concat(parts)))
            }
        }
    }

    /// Blocks until every rank has called `wait` (a barrier).
    pub fn wait(&self) -> Result<()> {
        self.core().check_contract(self.id(), "wait")?;
        if self.nprocs() == 1 {
            return Ok(());
        }
        self.require_region("wait")?;
        rename_timeout(Op::Wait, self.barrier())
    }

    /// `f` over main's data, spread over the ranks; the flat results in input
    /// order on main, `None` on workers.
    ///
    /// Inside a region every rank calls it. On main outside a region it is
    /// pool-style: it opens a region itself (threads need `f: 'static`;
    /// processes and MPI need `f` to be a `#[parallelizer::task]` fn).
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let squares = par.map(|x: u64| x * x, Some((0..10).collect())).unwrap();
    /// assert_eq!(squares.unwrap(), (0..10).map(|x| x * x).collect::<Vec<u64>>());
    /// ```
    pub fn map<T, R, F>(&self, f: F, data: Option<Vec<T>>) -> Result<Option<Vec<R>>>
    where
        T: Data,
        R: Data,
        F: Fn(T) -> R + Send + Sync + 'static,
    {
        let entry = task_of::<F>().filter(|t| matches!(t.kind, TaskKind::Map(_)));
        self.map_op(
            "map",
            type_name::<F>(),
            entry,
            data,
            Extra::None,
            true,
            move |chunk, ()| chunk.into_iter().map(&f).collect(),
        )
    }

    /// `map` with an extra argument that main broadcasts to
    /// every rank: `f(x, &extra)` (McUtils `extra_args`).
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let out = par.map_with(|x: i64, k: &i64| x * k, Some((0..5).collect()), Some(10)).unwrap();
    /// assert_eq!(out.unwrap(), [0, 10, 20, 30, 40]);
    /// ```
    pub fn map_with<T, E, R, F>(
        &self,
        f: F,
        data: Option<Vec<T>>,
        extra: Option<E>,
    ) -> Result<Option<Vec<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
        F: Fn(T, &E) -> R + Send + Sync + 'static,
    {
        self.map_op(
            "map_with",
            type_name::<F>(),
            None,
            data,
            Extra::Broadcast(extra),
            true,
            move |chunk, extra| chunk.into_iter().map(|x| f(x, &extra)).collect(),
        )
    }

    /// `map` where `f` takes a whole chunk and returns its
    /// results (McUtils `vectorized=True`); results are concatenated in rank
    /// order.
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:2").unwrap();
    /// let out = par.map_chunks(|xs: Vec<i32>| xs.iter().map(|x| x + 1000).collect(),
    ///                          Some((0..4).collect())).unwrap();
    /// assert_eq!(out.unwrap(), [1000, 1001, 1002, 1003]);
    /// ```
    pub fn map_chunks<T, R, F>(&self, f: F, data: Option<Vec<T>>) -> Result<Option<Vec<R>>>
    where
        T: Data,
        R: Data,
        F: Fn(Vec<T>) -> Vec<R> + Send + Sync + 'static,
    {
        self.map_op(
            "map_chunks",
            type_name::<F>(),
            None,
            data,
            Extra::None,
            false,
            move |chunk, ()| f(chunk),
        )
    }

    /// `map` over tuples whose fields are `f`'s arguments;
    /// flat results in input order, like `map` (McUtils returned them per
    /// rank; see the README).
    ///
    /// ```
    /// use parallelizer_core::from_config;
    /// let par = from_config("threads:3").unwrap();
    /// let out = par.starmap(|a: i32, b: i32| a * b, Some(vec![(1, 2), (3, 4), (5, 6)])).unwrap();
    /// assert_eq!(out.unwrap(), [2, 12, 30]);
    /// ```
    pub fn starmap<Args, R, F>(&self, f: F, data: Option<Vec<Args>>) -> Result<Option<Vec<R>>>
    where
        Args: Data,
        R: Data,
        F: Apply<Args, Output = R> + 'static,
    {
        self.map_op(
            "starmap",
            type_name::<F>(),
            None,
            data,
            Extra::None,
            true,
            move |chunk, ()| chunk.into_iter().map(|args| f.apply(args)).collect(),
        )
    }

    /// The body of every map: scatter, apply `body` to this rank's chunk,
    /// gather and flatten. Opens a region first when called on main outside
    /// one (pool-style). `elementwise` maps may split a rank's chunk over its
    /// threads (hybrid).
    #[allow(clippy::too_many_arguments)]
    fn map_op<T, E, R, B>(
        &self,
        op: &'static str,
        name: &'static str,
        entry: Option<&'static crate::task::TaskEntry>,
        data: Option<Vec<T>>,
        extra: Extra<E>,
        elementwise: bool,
        body: B,
    ) -> Result<Option<Vec<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
        B: Fn(Vec<T>, E) -> Vec<R> + Send + Sync + 'static,
    {
        self.core().check_contract(self.id(), op)?;
        if self.nprocs() == 1 || self.in_region() {
            return map_in_region(self, data, extra, elementwise, &body);
        }
        if let Some(rank) = registry::rank_of(self) {
            // Called on the parallelizer inside one of its regions: every
            // rank is here, so map on this rank's handle.
            return map_in_region(&*rank, data, extra, elementwise, &body);
        }
        if !self.on_main() {
            return Err(Error::ContractViolation(format!(
                "`{op}` on worker rank {} outside a region",
                self.id()
            )));
        }
        // Pool-style: main's data rides into the region in the closure
        // (threads) or by scatter (processes); the workers run the same body.
        let data = main_data(data, op)?;
        let broadcast = matches!(extra, Extra::Broadcast(_));
        let inputs = Arc::new(Mutex::new(Some((data, extra))));
        let body = Arc::new(body);
        let local: LocalTask = Arc::new(move |p: &dyn Parallelizer, _args: Msg| {
            let (data, extra) = if p.on_main() {
                let taken = inputs.lock().unwrap_or_else(|e| e.into_inner()).take();
                let (d, e) = taken.ok_or_else(|| {
                    Error::ContractViolation(format!("pool-style `{op}` ran twice on main"))
                })?;
                (Some(d), e)
            } else {
                (
                    None,
                    if broadcast {
                        Extra::Broadcast(None)
                    } else {
                        Extra::None
                    },
                )
            };
            Ok(Msg::local(map_in_region(
                p,
                data,
                extra,
                elementwise,
                &*body,
            )?))
        });
        let region = Region {
            task: RegionTask { name, entry, local },
            args: Msg::new(()),
        };
        let _entered = self.enter()?;
        self.run_region(region)?.into_local::<Option<Vec<R>>>()
    }

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
        self.run_local::<F, R>(local, Msg::new(args))
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
        self.run_local::<F, T>(local, Msg::new(args))
    }

    fn run_local<F, R: Send + 'static>(&self, local: LocalTask, args: Msg) -> Result<R> {
        let entry = task_of::<F>().filter(|t| matches!(t.kind, TaskKind::Region(_)));
        let region = Region {
            task: RegionTask {
                name: type_name::<F>(),
                entry,
                local,
            },
            args,
        };
        let _entered = self.enter()?;
        self.run_region(region)?.into_local::<R>()
    }

    /// Prints `msg` on the ranks `place` selects: plainly on main,
    /// `On Worker {id} ({pid}): msg` on workers. Any `Display` value works
    /// (McUtils failed on non-strings and braces).
    ///
    /// ```
    /// use parallelizer_core::{get_default, Where};
    /// get_default().print(Where::Both, 1);
    /// get_default().print(Where::Main, "{'a': 1}");
    /// ```
    pub fn print(&self, place: Where, msg: impl Display) {
        match (self.on_main(), place) {
            (true, Where::Both | Where::Main) => self.main_print(msg),
            (false, Where::Both | Where::Worker) => self.worker_print(msg),
            _ => {}
        }
    }

    /// Prints `msg` as is.
    pub fn main_print(&self, msg: impl Display) {
        println!("{msg}");
    }

    /// Prints `On Worker {id} ({pid}): msg`.
    pub fn worker_print(&self, msg: impl Display) {
        println!("On Worker {} ({}): {msg}", self.id(), self.pid());
    }
}

/// The extra argument of a map: none (`E = ()`), or main's value to broadcast.
enum Extra<E> {
    None,
    Broadcast(Option<E>),
}

fn map_in_region<T, E, R>(
    par: &dyn Parallelizer,
    data: Option<Vec<T>>,
    extra: Extra<E>,
    elementwise: bool,
    body: &(dyn Fn(Vec<T>, E) -> Vec<R> + Send + Sync),
) -> Result<Option<Vec<R>>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let chunk = par.scatter_unchecked(data)?;
    let extra = match extra {
        Extra::Broadcast(e) => par.broadcast_unchecked(e)?,
        // Only the maps without an extra argument use Extra::None, and
        // their E is `()`.
        Extra::None => Msg::new(()).into_value::<E>()?,
    };
    let threads = par.threads_per_rank().min(chunk.len());
    let out = if elementwise && threads > 1 {
        // Hybrid: this rank's chunk is split again over its threads, and the
        // pieces are concatenated in order, so the result does not change.
        let mut slots: Vec<Option<Vec<R>>> = (0..threads).map(|_| None).collect();
        let jobs: Vec<Job<'_>> = split(chunk, threads)
            .into_iter()
            .zip(slots.iter_mut())
            .map(|(piece, slot)| {
                let extra = extra.clone();
                Box::new(move || *slot = Some(body(piece, extra))) as Job<'_>
            })
            .collect();
        par.run_jobs(jobs);
        let mut out = Vec::new();
        for slot in slots {
            out.extend(slot.ok_or_else(|| {
                Error::ContractViolation("run_jobs returned before running every job".into())
            })?);
        }
        out
    } else {
        body(chunk, extra)
    };
    Ok(par.gather_unchecked(out)?.map(concat))
}

impl std::fmt::Debug for dyn Parallelizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Parallelizer({}, id={}, nprocs={}, uid={})",
            self.mode(),
            self.id(),
            self.nprocs(),
            self.core().uid()
        )
    }
}

/// `broadcast_pod` on a backend with native plain-data collectives: the
/// length, then the data straight into a buffer of `T`.
fn native_broadcast<T: bytemuck::Pod + Send>(
    native: &dyn NativePod,
    on_main: bool,
    data: Option<Vec<T>>,
) -> Result<Vec<T>> {
    let data = if on_main {
        Some(main_data(data, "broadcast_pod")?)
    } else {
        None
    };
    let mut len = [data.as_ref().map_or(0, |d| d.len()) as u64];
    native.broadcast_pod(PodType::of::<u64>(), bytemuck::cast_slice_mut(&mut len))?;
    let mut buf = data.unwrap_or_else(|| vec![T::zeroed(); len[0] as usize]);
    native.broadcast_pod(PodType::of::<T>(), bytemuck::cast_slice_mut(&mut buf))?;
    Ok(buf)
}

/// `scatter_pod` on a backend with native plain-data collectives: the
/// length, then one scatter-v of the chunks of [`chunk_sizes`].
fn native_scatter<T: bytemuck::Pod + Send>(
    native: &dyn NativePod,
    id: usize,
    nprocs: usize,
    data: Option<Vec<T>>,
) -> Result<Vec<T>> {
    let data = if id == 0 {
        Some(main_data(data, "scatter_pod")?)
    } else {
        None
    };
    let mut len = [data.as_ref().map_or(0, |d| d.len()) as u64];
    native.broadcast_pod(PodType::of::<u64>(), bytemuck::cast_slice_mut(&mut len))?;
    let counts = chunk_sizes(len[0] as usize, nprocs);
    let mut mine = vec![T::zeroed(); counts[id]];
    native.scatter_pod(
        PodType::of::<T>(),
        data.as_deref().map(bytemuck::cast_slice),
        &counts,
        bytemuck::cast_slice_mut(&mut mine),
    )?;
    Ok(mine)
}

/// `gather_pod` on a backend with native plain-data collectives: every
/// rank's length, then one gather-v into main's buffer.
fn native_gather<T: bytemuck::Pod + Send>(
    native: &dyn NativePod,
    on_main: bool,
    data: Vec<T>,
) -> Result<Option<Vec<T>>> {
    let counts = native.all_counts(data.len())?;
    let mut all = on_main.then(|| vec![T::zeroed(); counts.iter().sum()]);
    native.gather_pod(
        PodType::of::<T>(),
        bytemuck::cast_slice(&data),
        &counts,
        all.as_deref_mut().map(bytemuck::cast_slice_mut),
    )?;
    Ok(all)
}
