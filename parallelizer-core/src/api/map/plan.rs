//! Who does what in a map: inside a region every rank runs its part here;
//! on main outside a region the map opens a region whose ranks do. Each
//! map starts with main's plan (static or dynamic) and extra argument,
//! broadcast together; the static plan is scatter, apply, gather.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::parallelizer::{AnySource, LocalTask, Parallelizer, Region};
use crate::registry;
use crate::split::chunk_sizes;
use crate::task::region_task;

use super::super::{Contract, main_data};
use super::Schedule;
use super::call::{MapCall, Options, Parts, apply, main_panicked};
use super::dynamic;
use super::joined;
use super::progress::Tracker;
use super::shared::{self, Tried};
use super::source::Rule;
use super::wire;

/// How main has the items handed out, as it tells the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Plan {
    /// Scatter, apply, gather.
    Static,
    /// Chunks sent to ranks as they finish the previous ones.
    Dynamic,
    /// Main refused the map (no data, a chunk size of 0): every rank
    /// returns an error.
    Refused,
}

impl dyn Parallelizer {
    /// Every map: this rank's part inside a region (or on one rank); on main
    /// outside a region, a region whose ranks do their part. `F` is the fn
    /// item type whose registration lets ranks in other processes join.
    pub(crate) fn map_call<F, T, E, R>(
        &self,
        call: MapCall<T, E, R>,
        data: Option<Vec<T>>,
        extra: Option<E>,
        opts: &Options,
    ) -> Result<Option<Parts<R>>>
    where
        T: Data,
        E: Data + Clone,
        R: Data,
    {
        self.core().check_contract(self.id(), call.op.name())?;
        if self.in_region() && (self.nprocs() > 1 || registry::rank_of(self).is_some()) {
            return rank_part(self, &call, data, extra, opts, false);
        }
        if self.nprocs() == 1 {
            // One rank outside a region: a pool of one.
            return rank_part(self, &call, data, extra, opts, true);
        }
        if let Some(rank) = registry::rank_of(self) {
            // Called on the parallelizer inside one of its regions: every
            // rank is here, so map on this rank's handle.
            return rank_part(&*rank, &call, data, extra, opts, false);
        }
        if !self.on_main() {
            return Err(Error::ContractViolation(format!(
                "`{}` on worker rank {} outside a region",
                call.op,
                self.id()
            )));
        }
        check(opts.schedule)?;
        let op = call.op;
        let mut data = main_data(data, op)?;
        let mut extra = extra;
        // Chunks handed out: on ranks in this process, each rank takes them
        // from main's vector itself.
        let threads = self.threads_per_rank();
        if let Some(rule) = rule(opts.schedule, true, self.nprocs(), threads)
            && let Some(e) = extra.take()
        {
            match shared::map::<F, T, E, R>(self, &call, data, e, rule, opts)? {
                Tried::Ran(parts) => return Ok(Some(parts)),
                Tried::Elsewhere(d, e) => (data, extra) = (d, Some(e)),
            }
        }
        // Pool-style: main's data rides into the region in the closure; the
        // workers run the registration of `F` for this call (processes,
        // MPI), or the same closure (threads, static schedule), with no data.
        let form = call.form;
        let inputs = Arc::new(Mutex::new(Some((data, extra))));
        let opts = opts.clone();
        let local: LocalTask = Arc::new(move |p: &dyn Parallelizer, _form: Msg| {
            let (data, extra) = if p.on_main() {
                let taken = inputs.lock().unwrap_or_else(|e| e.into_inner()).take();
                let (d, e) = taken.ok_or_else(|| {
                    Error::ContractViolation(format!("pool-style `{op}` ran twice on main"))
                })?;
                (Some(d), e)
            } else {
                (None, None)
            };
            Ok(Msg::local(rank_part(p, &call, data, extra, &opts, true)?))
        });
        let task = region_task::<F>(local, |kind| kind.serves(form));
        let _entered = self.enter_for_run()?;
        self.run_region(Region::new(task, Msg::new(form)))?
            .into_local::<Option<Parts<R>>>()
    }
}

/// This rank's part of a map: main's plan and extra argument (one
/// broadcast), then the static or the dynamic plan. `pool`: a pool-style
/// map (for [`Schedule::Auto`]).
fn rank_part<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    data: Option<Vec<T>>,
    extra: Option<E>,
    opts: &Options,
    pool: bool,
) -> Result<Option<Parts<R>>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let nprocs = par.nprocs();
    // Main decides, before anything moves; workers learn it from main.
    let mine = par.on_main().then(|| {
        let data = main_data(data, call.op)?;
        let extra = main_data(extra, call.op)?;
        let rule = resolve(par, opts.schedule, pool)?;
        Ok((data, extra, rule))
    });
    if nprocs == 1 {
        let Some(mine) = mine else {
            unreachable!("a single rank is main")
        };
        let (data, extra, rule) = mine?;
        let tracker = Tracker::start(par, call.op, data.len(), &opts.watch);
        let alone = || dynamic::alone(par, call, data, &extra, rule, &tracker);
        let parts = match catch_unwind(AssertUnwindSafe(alone)) {
            Ok(parts) => parts,
            Err(panic) => Err(main_panicked(par, panic, pool)),
        };
        tracker.finish(parts.is_ok());
        return parts.map(Some);
    }
    // A map main refuses is refused on every rank, so that none is left
    // waiting in it.
    let told = mine.as_ref().map(|mine| match mine {
        Ok((_, extra, None)) => (Plan::Static, Some(extra.clone())),
        Ok((_, extra, Some(_))) => (Plan::Dynamic, Some(extra.clone())),
        Err(_) => (Plan::Refused, None),
    });
    let (plan, extra) = par.broadcast_as(told, Contract::Skip)?;
    let extra = match (plan, extra) {
        (Plan::Refused, _) => {
            return Err(match mine {
                Some(Err(e)) => e,
                _ => Error::Aborted { by_rank: 0 },
            });
        }
        (_, Some(extra)) => extra,
        (_, None) => {
            return Err(Error::Protocol(format!(
                "main's plan of `{}` came without its extra argument",
                call.op
            )));
        }
    };
    let Some(mine) = mine else {
        return match plan {
            Plan::Dynamic => dynamic::worker(par, call, &extra).map(|()| None),
            _ => static_part(par, call, None, &extra, None, pool, false).map(|_| None),
        };
    };
    let (data, _, rule) = mine?;
    let tracker = Tracker::start(par, call.op, data.len(), &opts.watch);
    let parts = match rule {
        None => static_part(
            par,
            call,
            Some(data),
            &extra,
            Some(&tracker),
            pool,
            opts.per_rank,
        ),
        Some(rule) => {
            let setup = dynamic::Setup {
                rule,
                pool,
                per_rank: opts.per_rank,
            };
            dynamic::main(par, call, data, &extra, setup, &tracker).map(Some)
        }
    };
    tracker.finish(parts.is_ok());
    parts
}

/// An error unless `schedule` can be used (checked on main before anything
/// starts).
fn check(schedule: Schedule) -> Result<()> {
    match schedule {
        Schedule::Dynamic { chunksize: 0 } => Err(Error::Config(
            "a map's chunksize must be at least 1 item (it was 0)".into(),
        )),
        _ => Ok(()),
    }
}

/// The chunk rule main's schedule asks for (`None`: the static split).
fn resolve(par: &dyn Parallelizer, schedule: Schedule, pool: bool) -> Result<Option<Rule>> {
    check(schedule)?;
    if par.nprocs() > 1 && par.any_source() == AnySource::Unsupported {
        // Nothing to hand chunks out with: every rank gets its share at once.
        return Ok(None);
    }
    Ok(rule(schedule, pool, par.nprocs(), par.threads_per_rank()))
}

/// The chunk rule of `schedule` on `nprocs` ranks of `threads` threads
/// each (`None`: the static split); `pool`: a pool-style map.
fn rule(schedule: Schedule, pool: bool, nprocs: usize, threads: usize) -> Option<Rule> {
    match schedule {
        Schedule::Static => None,
        Schedule::Auto if !pool => None,
        Schedule::Dynamic { chunksize } => Some(Rule::Fixed(chunksize)),
        Schedule::Auto | Schedule::Guided => Some(Rule::Guided {
            ranks: nprocs,
            min: threads.max(1),
        }),
    }
}

/// The static plan: scatter, apply, gather; on main, the results of each
/// rank's chunk (chunk `i` on rank `i`). A panic of `f` on main is held
/// until main has taken part in the gather (so no rank waits for it), then
/// resumed, or in a pool-style map (where which rank computes an item is the
/// map's business) returned as [`Error::WorkerPanicked`].
fn static_part<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    data: Option<Vec<T>>,
    extra: &E,
    tracker: Option<&Tracker>,
    pool: bool,
    per_rank: bool,
) -> Result<Option<Parts<R>>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let sizes = data.as_ref().map(|d| chunk_sizes(d.len(), par.nprocs()));
    let chunk = if native_split(par) {
        par.scatter_as(data, Contract::Skip)?
    } else {
        wire::scatter(par, data)?
    };
    let (out, panicked) = if par.on_main() {
        match catch_unwind(AssertUnwindSafe(|| apply(par, call, chunk, extra))) {
            Ok(out) => (out?, None),
            Err(panic) => (Vec::new(), Some(panic)),
        }
    } else {
        (apply(par, call, chunk, extra)?, None)
    };
    let parts = match joined::plane::<R>(par) {
        Some(plane) => {
            // An item-wise map: one result per item of each rank's chunk.
            let counts = sizes.as_deref().filter(|_| call.elementwise());
            joined::gather(par, plane, out, per_rank, counts)?
        }
        None => {
            let all = if native_split(par) {
                par.gather_as(out, Contract::Skip)?
            } else {
                wire::gather(par, out)?
            };
            all.map(|all| all.into_iter().enumerate().collect())
        }
    };
    if let Some(panic) = panicked {
        return Err(main_panicked(par, panic, pool));
    }
    let Some(parts) = parts else {
        return Ok(None);
    };
    if let (Some(tracker), Some(sizes)) = (tracker, sizes) {
        for (rank, items) in sizes.into_iter().enumerate() {
            tracker.add(rank, items);
        }
    }
    Ok(Some(parts))
}

/// Whether the static split goes through the backend's own collectives
/// (`scatter_as`/`gather_as`, which move vectors of numbers on their
/// plain-data path by themselves) rather than as chunk messages of the
/// map's wire form. Measured on 1e6 f64 (the fine map): MPI's native calls
/// on main's vector beat the chunk messages about 2x on 2 and 4 ranks; the
/// region protocol's plain path (threads, processes), which lends or copies
/// each part and waits for its acknowledgement, was 2-5x slower than the
/// messages on processes. MPI is the backend whose sends wait for their
/// receiver, hence the test.
fn native_split(par: &dyn Parallelizer) -> bool {
    matches!(par.any_source(), AnySource::Unbuffered | AnySource::Posted)
}
