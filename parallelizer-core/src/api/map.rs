//! Maps: `map`, `map_with`, `map_chunks`, `starmap`. Inside a region every
//! rank calls them; on main outside a region they open a region themselves
//! (pool-style).

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::op::Op;
use crate::parallelizer::{Job, LocalTask, Parallelizer, Region};
use crate::registry;
use crate::split::{concat, split};
use crate::task::{TaskKind, region_task};

use super::{Contract, main_data};

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

/// One map call: everything but the data.
struct MapCall<T, E, R> {
    op: Op,
    /// Whether ranks may split their chunk over their threads (item-wise
    /// maps; a chunk-wise `f` gets the whole chunk).
    elementwise: bool,
    /// How each rank gets the extra argument: broadcast from main
    /// (`map_with`), or nothing to get (`E = ()`).
    extra: fn(&dyn Parallelizer, Option<E>) -> Result<E>,
    /// `f` applied to one piece of a rank's chunk.
    body: Arc<dyn Fn(Vec<T>, E) -> Vec<R> + Send + Sync>,
}

impl<T, E, R> Clone for MapCall<T, E, R> {
    fn clone(&self) -> Self {
        MapCall {
            op: self.op,
            elementwise: self.elementwise,
            extra: self.extra,
            body: self.body.clone(),
        }
    }
}

fn no_extra(_: &dyn Parallelizer, _: Option<()>) -> Result<()> {
    Ok(())
}

fn broadcast_extra<E: Data + Clone>(par: &dyn Parallelizer, extra: Option<E>) -> Result<E> {
    par.broadcast_as(extra, Contract::Skip)
}

impl dyn Parallelizer {
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
        let call = MapCall {
            op: Op::Map,
            elementwise: true,
            extra: no_extra,
            body: Arc::new(move |chunk: Vec<T>, ()| chunk.into_iter().map(&f).collect()),
        };
        self.map_call::<F, _, _, _>(call, data, None)
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
        let call = MapCall {
            op: Op::MapWith,
            elementwise: true,
            extra: broadcast_extra::<E>,
            body: Arc::new(move |chunk: Vec<T>, extra: E| {
                chunk.into_iter().map(|x| f(x, &extra)).collect()
            }),
        };
        self.map_call::<Unregistered, _, _, _>(call, data, extra)
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
        let call = MapCall {
            op: Op::MapChunks,
            elementwise: false,
            extra: no_extra,
            body: Arc::new(move |chunk: Vec<T>, ()| f(chunk)),
        };
        self.map_call::<Unregistered, _, _, _>(call, data, None)
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
        let call = MapCall {
            op: Op::Starmap,
            elementwise: true,
            extra: no_extra,
            body: Arc::new(move |chunk: Vec<Args>, ()| {
                chunk.into_iter().map(|args| f.apply(args)).collect()
            }),
        };
        self.map_call::<Unregistered, _, _, _>(call, data, None)
    }

    /// Every map: inside a region (or with one rank) scatter, apply, gather;
    /// on main outside a region, open a region that does it. `F` is the fn
    /// item type whose registration lets ranks in other processes join.
    fn map_call<F, T, E, R>(
        &self,
        call: MapCall<T, E, R>,
        data: Option<Vec<T>>,
        extra: Option<E>,
    ) -> Result<Option<Vec<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
    {
        self.core().check_contract(self.id(), call.op.name())?;
        if self.nprocs() == 1 || self.in_region() {
            return map_in_region(self, &call, data, extra);
        }
        if let Some(rank) = registry::rank_of(self) {
            // Called on the parallelizer inside one of its regions: every
            // rank is here, so map on this rank's handle.
            return map_in_region(&*rank, &call, data, extra);
        }
        if !self.on_main() {
            return Err(Error::ContractViolation(format!(
                "`{}` on worker rank {} outside a region",
                call.op,
                self.id()
            )));
        }
        // Pool-style: main's data rides into the region in the closure
        // (threads) or by scatter (processes); the workers run the same body.
        let op = call.op;
        let inputs = Arc::new(Mutex::new(Some((main_data(data, op)?, extra))));
        let local: LocalTask = Arc::new(move |p: &dyn Parallelizer, _args: Msg| {
            let (data, extra) = if p.on_main() {
                let taken = inputs.lock().unwrap_or_else(|e| e.into_inner()).take();
                let (d, e) = taken.ok_or_else(|| {
                    Error::ContractViolation(format!("pool-style `{op}` ran twice on main"))
                })?;
                (Some(d), e)
            } else {
                (None, None)
            };
            Ok(Msg::local(map_in_region(p, &call, data, extra)?))
        });
        let task = region_task::<F>(local, |kind| matches!(kind, TaskKind::Map(_)));
        let _entered = self.enter()?;
        self.run_region(Region::new(task, Msg::new(())))?
            .into_local::<Option<Vec<R>>>()
    }
}

/// The fn item type of maps that have no registered form (yet): no task of
/// this type exists, so their pool-style regions run only where closures can.
enum Unregistered {}

/// This rank's part of a map: scatter, the extra argument, apply (split over
/// the rank's threads when hybrid), gather and flatten.
fn map_in_region<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    data: Option<Vec<T>>,
    extra: Option<E>,
) -> Result<Option<Vec<R>>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let chunk = par.scatter_as(data, Contract::Skip)?;
    let extra = (call.extra)(par, extra)?;
    let threads = par.threads_per_rank().min(chunk.len());
    let out = if call.elementwise && threads > 1 {
        // Hybrid: this rank's chunk is split again over its threads, and the
        // pieces are concatenated in order, so the result does not change.
        let body = &*call.body;
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
        (call.body)(chunk, extra)
    };
    Ok(par.gather_as(out, Contract::Skip)?.map(concat))
}
