//! One map call as every rank sees it: the fn applied to a chunk, the
//! options main decides with, and how a rank applies the fn to a chunk
//! (over its threads when it has several).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::msg::Data;
use crate::op::Op;
use crate::outcome::{panic_message, resume_unwinding};
use crate::parallelizer::{Job, Parallelizer};
use crate::parts::Part;
use crate::slots::Filler;
use crate::split::split;
use crate::task::MapForm;

use super::Schedule;
use super::progress::Watch;

/// The options of one map, as [`Mapper`](super::Mapper) sets them.
#[derive(Clone, Default)]
pub(crate) struct Options {
    pub(crate) schedule: Schedule,
    /// Who watches the map's progress.
    pub(crate) watch: Watch,
    /// The results are wanted per rank ([`PerRank`](super::PerRank)).
    pub(crate) per_rank: bool,
}

/// `f` applied to a chunk, with the extra argument.
pub(crate) type Body<T, E, R> = Arc<dyn Fn(Vec<T>, &E) -> Vec<R> + Send + Sync>;

/// An item-wise `f` applied to a chunk taken from main's vector, each
/// result pushed straight into its place in the map's result (a
/// pool-style map on threads, `shared.rs`): no vector of the chunk's items
/// or results.
pub(crate) type Each<T, E, R> = Arc<dyn Fn(Part<T>, &E, &mut Filler<'_, R>) + Send + Sync>;

/// One map call: everything but the data.
pub(crate) struct MapCall<T, E, R> {
    /// Which call (and so which registered worker form).
    pub(crate) form: MapForm,
    /// The operation messages and errors name.
    pub(crate) op: Op,
    /// `f` applied to a chunk.
    pub(crate) body: Body<T, E, R>,
    /// `f` applied item by item, for an item-wise map (`None`: a chunk-wise
    /// `f` gets the whole chunk).
    pub(crate) each: Option<Each<T, E, R>>,
}

impl<T, E, R> MapCall<T, E, R> {
    /// Whether `f` is item-wise: a rank may split a chunk over its threads,
    /// and each chunk has as many results as items.
    pub(crate) fn elementwise(&self) -> bool {
        self.each.is_some()
    }
}

impl<T, E, R> Clone for MapCall<T, E, R> {
    fn clone(&self) -> Self {
        MapCall {
            form: self.form,
            op: self.op,
            body: self.body.clone(),
            each: self.each.clone(),
        }
    }
}

/// Every chunk's results, in input order, with the rank that computed them.
pub(crate) type Parts<R> = Vec<(usize, Vec<R>)>;

/// `f` on one chunk on this rank: split again over the rank's threads when
/// it has several and `f` is item-wise, the pieces' results concatenated in
/// order, so the result does not change.
pub(crate) fn apply<T, E, R>(
    par: &dyn Parallelizer,
    call: &MapCall<T, E, R>,
    chunk: Vec<T>,
    extra: &E,
) -> Result<Vec<R>>
where
    T: Data,
    E: Data + Clone,
    R: Data,
{
    let threads = par.threads_per_rank().min(chunk.len());
    if !call.elementwise() || threads <= 1 {
        return Ok((call.body)(chunk, extra));
    }
    let body = &*call.body;
    let mut slots: Vec<Option<Vec<R>>> = (0..threads).map(|_| None).collect();
    let jobs: Vec<Job<'_>> = split(chunk, threads)
        .into_iter()
        .zip(slots.iter_mut())
        .map(|(piece, slot)| {
            let extra = extra.clone();
            Box::new(move || *slot = Some(body(piece, &extra))) as Job<'_>
        })
        .collect();
    par.run_jobs(jobs);
    let mut out = Vec::new();
    for slot in slots {
        out.extend(slot.ok_or_else(|| {
            Error::ContractViolation("run_jobs returned before running every job".into())
        })?);
    }
    Ok(out)
}

/// A panic of `f` on main: resumed inside a region; in a pool-style map,
/// the map's error, as a worker's panic is.
pub(crate) fn main_panicked(
    par: &dyn Parallelizer,
    panic: Box<dyn std::any::Any + Send>,
    pool: bool,
) -> Error {
    if !pool {
        resume_unwinding(panic);
    }
    Error::WorkerPanicked {
        rank: par.id(),
        message: panic_message(&*panic),
    }
}
