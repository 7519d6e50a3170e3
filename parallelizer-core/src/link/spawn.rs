//! `run_on_threads`: a region whose ranks are threads of this process,
//! each a [`LinkRank`] over its own transport.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::parallelizer::{Core, Parallelizer, Region};
use crate::runtime::run_as;

use super::rank::LinkRank;
use super::{Event, Limits, Transport};

/// Runs `region` with one rank per transport — rank 0 on the calling
/// thread, the others on threads started for the region — and returns
/// main's result: the whole region protocol for a backend whose ranks are
/// threads of this process. Rank threads that do not finish (a task that
/// never returns, past the deadline) are left running, not joined.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer};
/// use parallelizer_core::backend::{Channels, Limits, Region, RegionTask, run_on_threads, Msg};
/// use std::sync::Arc;
/// let par = from_config("serial").unwrap();
/// let task = RegionTask::new("ids", Arc::new(|p: &dyn Parallelizer, _| {
///     Ok(Msg::local(p.gather(p.id())?))
/// }));
/// let limits = Limits::from_config(par.core().config());
/// let out = run_on_threads(par.core(), Channels::mesh(3), Region::new(task, Msg::new(())), limits);
/// assert_eq!(out.unwrap().into_local::<Option<Vec<usize>>>().unwrap(), Some(vec![0, 1, 2]));
/// ```
pub fn run_on_threads<T: Transport>(
    parent: &Core,
    transports: Vec<T>,
    region: Region,
    limits: Limits,
) -> Result<Msg> {
    let nprocs = transports.len();
    let (task, args) = region.into_parts();
    // Workers get their own copy of the (small) arguments, encoded once.
    // (Values that travel by reference, such as shared arrays, ride along
    // as attachments.)
    let shared = if nprocs > 1 {
        Some((args.to_wire()?, args.type_name().map(str::to_string)))
    } else {
        None
    };
    let mut ranks = transports
        .into_iter()
        .enumerate()
        .map(|(id, t)| Arc::new(LinkRank::new(parent, id, nprocs, 0, limits, t)));
    let Some(main) = ranks.next() else {
        return Err(Error::Config("a region needs at least one rank".into()));
    };
    for rank in ranks {
        let task = task.clone();
        let (bytes, attached) = shared
            .as_ref()
            .map_or_else(Default::default, |s| s.0.clone());
        let mut wire = Msg::from_wire(args.encoding(), bytes, attached);
        if let Some(name) = shared.as_ref().and_then(|s| s.1.as_deref()) {
            wire = wire.sent_as(name);
        }
        let id = rank.id();
        let spawned = std::thread::Builder::new()
            .name(format!("parallelizer-rank-{id}"))
            .spawn(move || {
                let handle: Arc<dyn Parallelizer> = rank.clone();
                let outcome = run_as(&handle, |p| task.run(p, wire));
                rank.finish_worker(outcome);
            });
        if let Err(e) = spawned {
            // The rank never starts: to the others it is gone.
            main.deliver(Event::Gone {
                rank: id,
                error: Error::Launch(format!("could not start the thread of rank {id}: {e}")),
            });
        }
    }
    let handle: Arc<dyn Parallelizer> = main.clone();
    let outcome = run_as(&handle, |p| task.run(p, args));
    main.finish_main(outcome).result
}
