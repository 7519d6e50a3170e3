//! Pool-style maps whose ranks are threads of this process: every rank,
//! main included, takes the next chunk of main's vector itself (an atomic
//! counter over [`crate::parts::Parts`], as a pool-style `map_reduce`
//! does) and puts its results in place. No scheduler, no messages, no
//! second thread on main: the scheduler of `dynamic.rs` is for ranks that
//! cannot reach main's memory. The chunks are the ones it would hand out.
//!
//! An item-wise map (`map`, `starmap`) with results in one list applies
//! `f` to each item as it moves out of main's vector and pushes each result
//! straight into its place in the map's result (`crate::slots`): no vector
//! of a chunk's items or results, nobody concatenates them afterwards (a
//! fine map on `threads:2`, a million items of about 8 ns, took 3.7-5.2 ms
//! as rayon's `par_iter().map().collect()`, against 4.4-5.6 ms, 1.08-1.17x
//! rayon, with both vectors). A worker that computes on main's CPU moves off
//! it ([`OffMain`]).
//!
//! Whether the ranks can take a closure is asked of the backend by running
//! the region with an unregistered task: on processes and MPI that fails
//! with [`Error::TaskNotRegistered`] before anything is sent, and the data
//! go back to the caller for the scheduler.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cpu::OffMain;
use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::outcome::resume_unwinding;
use crate::parallelizer::{LocalTask, Parallelizer, Region, RegionTask};
use crate::parts::Parts;
use crate::slots::Slots;

use super::call::{MapCall, Options, Parts as Results, apply, main_panicked};
use super::progress::Tracker;
use super::source::Rule;

/// What trying the map on ranks of this process gave.
pub(super) enum Tried<T, E, R> {
    /// The ranks ran it: every chunk's results, in input order.
    Ran(Results<R>),
    /// The ranks live in other processes; nothing ran: main's data and
    /// extra argument back.
    Elsewhere(Vec<T>, E),
}

/// A map's state, shared by the ranks.
struct Shared<T, E, R> {
    chunks: Arc<Parts<T>>,
    /// The next chunk nobody has taken, counted from the first chunk that
    /// is no rank's own.
    next: AtomicUsize,
    /// Set when a rank's `f` failed or panicked: nobody takes another chunk.
    stop: AtomicBool,
    extra: Mutex<E>,
    done: Done<R>,
    tracker: Tracker,
    /// The CPU main computes its chunks on, where every rank has a core.
    main_cpu: Option<usize>,
}

/// A chunk's results and the rank that computed them.
type Computed<R> = (usize, Vec<R>);

/// Where the chunks' results go.
enum Done<R> {
    /// Each chunk's, in input order.
    Chunks(Mutex<Vec<Option<Computed<R>>>>),
    /// Into their place in the map's result (an item-wise map: each chunk
    /// has as many results as items).
    Filled(Slots<R>),
}

fn lock<X>(m: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The map of `data` in chunks of `rule` on the ranks of `par` (main,
/// outside a region), if they are threads of this process.
pub(super) fn map<F, T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    data: Vec<T>,
    extra: E,
    rule: Rule,
    opts: &Options,
) -> Result<Tried<T, E, R>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let sizes = rule.sizes(data.len());
    let tracker = Tracker::start(par, call.op, data.len(), &opts.watch);
    let done = if call.elementwise() && !opts.per_rank {
        Done::Filled(Slots::new(&sizes))
    } else {
        Done::Chunks(Mutex::new((0..sizes.len()).map(|_| None).collect()))
    };
    let shared = Arc::new(Shared {
        done,
        chunks: Arc::new(Parts::new(data, &sizes)),
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        extra: Mutex::new(extra),
        tracker,
        main_cpu: crate::cpu::main_cpu(par.nprocs()),
    });
    let local: LocalTask = {
        let (shared, call) = (shared.clone(), call.clone());
        Arc::new(move |p: &dyn Parallelizer, _: Msg| {
            let extra = lock(&shared.extra).clone();
            take_chunks(p, &call, &shared, &extra)?;
            Ok(Msg::local(()))
        })
    };
    let task = RegionTask::new(std::any::type_name::<F>(), local);
    let _entered = par.enter_for_run()?;
    let ran = par.run_region(Region::new(task, Msg::new(())));
    match ran {
        Err(Error::TaskNotRegistered { .. }) => {
            // Nothing ran, and the region's task is gone with its clone.
            let back = Arc::into_inner(shared).and_then(|shared| {
                let extra = shared
                    .extra
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner);
                let data = Arc::into_inner(shared.chunks).and_then(Parts::into_vec)?;
                Some(Tried::Elsewhere(data, extra))
            });
            back.ok_or_else(|| {
                Error::Protocol(format!(
                    "`{}`: a region that never ran kept the data",
                    call.op
                ))
            })
        }
        Err(e) => {
            shared.tracker.finish(false);
            Err(e)
        }
        Ok(_) => {
            shared.tracker.finish(true);
            results(&shared, call).map(Tried::Ran)
        }
    }
}

/// Every chunk's results, in input order, once the ranks are done.
fn results<T, E, R>(shared: &Shared<T, E, R>, call: &MapCall<T, E, R>) -> Result<Results<R>> {
    let missing = || Error::Protocol(format!("a chunk of `{}` was computed by no rank", call.op));
    // A worker thread may still hold its clone of `shared` a moment.
    match &shared.done {
        Done::Chunks(done) => {
            let done = std::mem::take(&mut *lock(done));
            done.into_iter()
                .map(|part| part.ok_or_else(missing))
                .collect()
        }
        Done::Filled(slots) => Ok(vec![(0, slots.take_vec().ok_or_else(missing)?)]),
    }
}

/// A rank's part: the next chunk nobody has taken, until none is left or
/// a rank failed. A panic of `f` on main is the map's error (as on a
/// worker, where it unwinds into the region's).
fn take_chunks<T, E, R>(
    p: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    shared: &Shared<T, E, R>,
    extra: &E,
) -> Result<()>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    // Each rank's first chunk is its own (chunk `id`), as the scheduler
    // sends every worker its first before main starts: a rank whose thread
    // starts late still gets one. The others go to whoever is free.
    let mut own = Some(p.id());
    let mut off_main = OffMain::new(shared.main_cpu, p.on_main());
    while !shared.stop.load(Ordering::Relaxed) {
        off_main.check();
        let i = own
            .take()
            .unwrap_or_else(|| p.nprocs() + shared.next.fetch_add(1, Ordering::Relaxed));
        let Some(part) = shared.chunks.take(i) else {
            return Ok(());
        };
        let items = part.len();
        // An item-wise `f` on a rank of one thread: each item from main's
        // vector, each result into its place in the map's result.
        if let (Some(each), Done::Filled(slots)) = (&call.each, &shared.done) {
            if p.threads_per_rank() <= 1 {
                let filled = catch_unwind(AssertUnwindSafe(|| {
                    slots.fill_with(i, |out| each(part, extra, out))
                }));
                match filled {
                    Ok(Ok(())) => shared.tracker.add(p.id(), items),
                    Ok(Err(got)) => return Err(miscounted(call, shared, got, items)),
                    Err(panic) => return Err(panicked(p, shared, panic)),
                }
                continue;
            }
        }
        let chunk: Vec<T> = part.collect();
        match catch_unwind(AssertUnwindSafe(|| apply(p, call, chunk, extra))) {
            Ok(Ok(out)) => {
                match &shared.done {
                    Done::Chunks(done) => lock(done)[i] = Some((p.id(), out)),
                    Done::Filled(slots) => {
                        if let Err(out) = slots.fill(i, out) {
                            return Err(miscounted(call, shared, out.len(), items));
                        }
                    }
                }
                shared.tracker.add(p.id(), items);
            }
            Ok(Err(e)) => {
                shared.stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
            Err(panic) => return Err(panicked(p, shared, panic)),
        }
    }
    Ok(())
}

/// An item-wise `f` that made `got` results of a chunk of `items`: nobody
/// takes another chunk, and the map fails.
fn miscounted<T, E, R>(
    call: &MapCall<T, E, R>,
    shared: &Shared<T, E, R>,
    got: usize,
    items: usize,
) -> Error {
    shared.stop.store(true, Ordering::Relaxed);
    Error::Protocol(format!(
        "`{}` made {got} results of a chunk of {items} items",
        call.op
    ))
}

/// A panic of `f` on rank `p`: nobody takes another chunk, and on main it
/// is the map's error; on a worker it unwinds into the region's.
fn panicked<T, E, R>(
    p: &dyn Parallelizer,
    shared: &Shared<T, E, R>,
    panic: Box<dyn std::any::Any + Send>,
) -> Error {
    shared.stop.store(true, Ordering::Relaxed);
    if p.on_main() {
        return main_panicked(p, panic, true);
    }
    resume_unwinding(panic);
}
