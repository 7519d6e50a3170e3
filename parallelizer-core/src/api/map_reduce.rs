//! `map_reduce`: `f` over the data, spread over the ranks, the results
//! combined where they are made (rayon's `par_iter().map(f).reduce(..)`):
//! each rank folds its chunk, then the ranks reduce along a tree (MPI's
//! `MPI_Reduce` for built-in ops on numbers). No result travels to main
//! but the one value. Pool-style on ranks of one process (threads), the
//! ranks fold chunks of main's vector as they come free instead, and main
//! combines their values.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cpu::OffMain;
use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::op::Op;
use crate::parallelizer::{Job, LocalTask, Parallelizer, Region, RegionTask};
use crate::parts::Parts;
use crate::reduce::{ReduceOp, Shape, identity, numeric};
use crate::registry;
use crate::split::{chunk_sizes, split};

use super::{Contract, main_data};

/// Chunks per rank of a pool-style `map_reduce` whose ranks share this
/// process (each takes the next chunk when it finishes one).
const CHUNKS_PER_RANK: usize = 16;

impl dyn Parallelizer {
    /// `f` over main's data, spread over the ranks, the results combined
    /// with `op`: main returns the value (`None` for no data), workers
    /// `None`. The pool-style equivalent of rayon's
    /// `par_iter().map(f).reduce(..)`: each rank folds its own chunk (over
    /// its threads when `threads_per_rank > 1`), then the ranks' values
    /// meet along a tree (`MPI_Reduce` for built-in ops on numbers), so
    /// only one value per rank travels.
    ///
    /// `op` is a built-in [`Reduce`](crate::Reduce) op or an associative `Fn(R, R) -> R`;
    /// values are combined in input order. Inside a region every rank
    /// calls it. On main outside a region it opens one: on threads the
    /// ranks fold chunks of main's items (16 per rank), each taking the
    /// next when it finishes one, as rayon's work stealing keeps every
    /// thread busy, and main combines the chunks' values in order; on
    /// processes and MPI, whose
    /// ranks cannot take a closure, `f` must be a `#[parallelizer::task]`
    /// fn `fn(item: T) -> R`, mapped pool-style (as `map`),
    /// and main folds the results (so they all travel to main: inside
    /// `run` only one value per rank does).
    ///
    /// ```
    /// use parallelizer_core::{from_config, Reduce};
    /// let par = from_config("threads:4").unwrap();
    /// let sum = par.map_reduce(|x: u64| x * x, Some((1..=100).collect()), Reduce::Sum).unwrap();
    /// assert_eq!(sum, Some(338_350));
    /// let longest = par
    ///     .map_reduce(|s: String| s.len(), Some(vec!["a".into(), "abc".into()]), |a: usize, b: usize| a.max(b))
    ///     .unwrap();
    /// assert_eq!(longest, Some(3));
    /// ```
    pub fn map_reduce<T, R, F, O>(&self, f: F, data: Option<Vec<T>>, op: O) -> Result<Option<R>>
    where
        T: Data,
        R: Data,
        F: Fn(T) -> R + Send + Sync + 'static,
        O: ReduceOp<R> + 'static,
    {
        self.core()
            .check_contract(self.id(), Op::MapReduce.name())?;
        if self.nprocs() == 1 || self.in_region() {
            return map_reduce_here(self, &f, data, &op);
        }
        if let Some(rank) = registry::rank_of(self) {
            return map_reduce_here(&*rank, &f, data, &op);
        }
        if !self.on_main() {
            return Err(Error::ContractViolation(format!(
                "`map_reduce` on worker rank {} outside a region",
                self.id()
            )));
        }
        // Pool-style: the ranks run the closure in this process, so each
        // moves the items of a chunk out of main's vector (no scatter, no
        // copy) and folds it, then takes the next chunk nobody has taken
        // (a rank that is slow, or descheduled, holds up one chunk, not a
        // whole share); main then combines the chunks' values in order.
        let data = main_data(data, Op::MapReduce)?;
        let chunks = data.len().min(CHUNKS_PER_RANK * self.nprocs()).max(1);
        let counts = chunk_sizes(data.len(), chunks);
        let parts = Arc::new(Parts::new(data, &counts));
        let folded: Arc<Mutex<Vec<Option<R>>>> =
            Arc::new(Mutex::new((0..chunks).map(|_| None).collect()));
        let next = Arc::new(AtomicUsize::new(0));
        let (f, op) = (Arc::new(f), Arc::new(op));
        let main_cpu = crate::cpu::main_cpu(self.nprocs());
        let local: LocalTask = {
            let (parts, folded, f, op) = (parts.clone(), folded.clone(), f.clone(), op.clone());
            Arc::new(move |p: &dyn Parallelizer, _args: Msg| {
                let mut off_main = OffMain::new(main_cpu, p.on_main());
                loop {
                    off_main.check();
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(part) = parts.take(i) else {
                        break;
                    };
                    let value = fold(part.map(&*f), &*op)?;
                    folded.lock().unwrap_or_else(PoisonError::into_inner)[i] = value;
                }
                Ok(Msg::local(()))
            })
        };
        let task = RegionTask::new(std::any::type_name::<F>(), local);
        let _entered = self.enter_for_run()?;
        match self.run_region(Region::new(task, Msg::new(()))) {
            // The ranks live in other processes and could not take the
            // closure, so no rank ran: `f` goes by name, as a pool-style
            // `map` of a registered fn does, and main folds the results.
            Err(e @ Error::TaskNotRegistered { .. }) => {
                let (Some(data), Ok(f)) = (
                    Arc::into_inner(parts).and_then(Parts::into_vec),
                    Arc::try_unwrap(f),
                ) else {
                    return Err(e);
                };
                let all = self.map(f, Some(data))?.unwrap_or_default();
                fold(all.into_iter(), &*op)
            }
            ran => {
                ran?;
                let mut folded = folded.lock().unwrap_or_else(PoisonError::into_inner);
                combine_in_order(std::mem::take(&mut *folded).into_iter().map(Ok), &*op)
            }
        }
    }
}

/// This rank's part of a `map_reduce`: its chunk folded, then the ranks'
/// values reduced to main.
fn map_reduce_here<T, R, F, O>(
    par: &dyn Parallelizer,
    f: &F,
    data: Option<Vec<T>>,
    op: &O,
) -> Result<Option<R>>
where
    T: Data,
    R: Data,
    F: Fn(T) -> R + Send + Sync,
    O: ReduceOp<R>,
{
    let empty = data.as_ref().is_some_and(Vec::is_empty);
    let chunk = par.scatter_as(data, Contract::Skip)?;
    let mine = fold_chunk(par, f, chunk, op)?;
    reduce_folded(par, mine, op, empty)
}

/// The ranks' folded values reduced to main (`None` on workers, and on
/// main when there was no data: `empty`, which only main knows).
fn reduce_folded<R, O>(
    par: &dyn Parallelizer,
    mine: Option<R>,
    op: &O,
    empty: bool,
) -> Result<Option<R>>
where
    R: Data,
    O: ReduceOp<R> + ?Sized,
{
    // Built-in ops on numbers: a native reduction, empty chunks counting
    // as the op's identity.
    let native = op.builtin().filter(|_| par.native_reduce().is_some());
    if let Some(b) = native.filter(|_| numeric::<R>().is_some_and(|(_, s)| s == Shape::Scalar)) {
        if let Some(zero) = identity::<R>(b) {
            let total = par.reduce_as(mine.unwrap_or(zero), op, Contract::Skip)?;
            return Ok(total.filter(|_| !empty));
        }
    }
    Ok(par.reduce_as(mine, &Lifted(op), Contract::Skip)?.flatten())
}

/// `items` folded with `op`, in order; `None` for no items.
fn fold<R, O: ReduceOp<R>>(mut items: impl Iterator<Item = R>, op: &O) -> Result<Option<R>> {
    let Some(first) = items.next() else {
        return Ok(None);
    };
    op.fold_items(first, items).map(Some)
}

/// `f` over this rank's chunk, folded with `op` in order (over the rank's
/// threads when it has more than one); `None` for an empty chunk.
fn fold_chunk<T, R, F, O>(par: &dyn Parallelizer, f: &F, chunk: Vec<T>, op: &O) -> Result<Option<R>>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
    O: ReduceOp<R>,
{
    let threads = par.threads_per_rank().min(chunk.len());
    if threads <= 1 {
        return fold(chunk.into_iter().map(f), op);
    }
    let mut slots: Vec<Option<Result<Option<R>>>> = (0..threads).map(|_| None).collect();
    let jobs: Vec<Job<'_>> = split(chunk, threads)
        .into_iter()
        .zip(slots.iter_mut())
        .map(|(piece, slot)| {
            Box::new(move || *slot = Some(fold(piece.into_iter().map(f), op))) as Job<'_>
        })
        .collect();
    par.run_jobs(jobs);
    combine_in_order(
        slots.into_iter().map(|slot| {
            slot.ok_or_else(|| {
                Error::ContractViolation("run_jobs returned before running every job".into())
            })?
        }),
        op,
    )
}

/// The folded values of consecutive chunks (`None`: an empty chunk),
/// combined with `op` in order; the first error, if a chunk failed.
fn combine_in_order<R, O: ReduceOp<R>>(
    mut values: impl Iterator<Item = Result<Option<R>>>,
    op: &O,
) -> Result<Option<R>> {
    values.try_fold(None, |acc, v| Lifted(op).combine(acc, v?))
}

/// `op` on optional values: `None` (an empty chunk) leaves the other
/// operand as it is.
struct Lifted<'a, O: ?Sized>(&'a O);

impl<R, O: ReduceOp<R> + ?Sized> ReduceOp<Option<R>> for Lifted<'_, O> {
    fn combine(&self, a: Option<R>, b: Option<R>) -> Result<Option<R>> {
        Ok(match (a, b) {
            (Some(a), Some(b)) => Some(self.0.combine(a, b)?),
            (a, None) => a,
            (None, b) => b,
        })
    }
}
