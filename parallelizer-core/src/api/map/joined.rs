//! The gather of a static map's results when they are plain numbers and
//! the backend moves plain data between processes (processes, MPI): the
//! workers' results land behind main's own, in main's vector, which is the
//! map's result (on processes, an item-wise map's parts are posted on their
//! places there before they come). Gathered as one vector per rank instead,
//! they were copied once more into it (`concat`), on fresh memory faulted
//! in page by page.
//! The McUtils map (80 M `u32` results) went from 0.62–0.91 s to 0.46 s on
//! processes:2, 0.73 to 0.50 s on processes:4, 0.53 to 0.46 s on mpi:2 and
//! 0.67 to 0.50 s on mpi:4 (rayon: 0.53 s).

use crate::error::{Error, Result};
use crate::msg::Data;
use crate::native::{NativePod, Posted};
use crate::op::Op;
use crate::parallelizer::Parallelizer;
use crate::plain::{PlainOps, vec_ops};

use super::super::{Contract, Pairing, named};
use super::call::Parts;
use super::wire;

/// A worker's results of at least this many bytes are lent to main (which
/// copies them straight into its vector); smaller ones go as a message of
/// their bytes, written from the vector as it is, where main takes parts
/// as messages (processes; MPI's go through its `gather_pod`). Measured,
/// not understood: lending the fine map's 4 MB a rank made the map 12 %
/// slower (4.2 against 3.75 ms on processes:2), the time going to the next
/// map's scatter.
const LEND_FROM: usize = 16 << 20;

/// The plain-data plane and the ops of `R` when a static map's results of
/// type `R` are gathered this way (the same answer on every rank).
pub(super) fn plane<R: Data>(
    par: &dyn Parallelizer,
) -> Option<(&dyn NativePod, &'static dyn PlainOps)> {
    let native = par.native_pod().filter(|n| !n.in_process())?;
    Some((native, vec_ops::<Vec<R>>()?))
}

/// Gathers every rank's results `out`: on main, its own first, then rank
/// 1's, and so on, as one part (or, `per_rank`, one part per rank); `None`
/// on workers. Main passes `counts`, every rank's results, where it knows
/// them (an item-wise map: one per item of each rank's chunk).
pub(super) fn gather<R: Data>(
    par: &dyn Parallelizer,
    (native, ops): (&dyn NativePod, &'static dyn PlainOps),
    out: Vec<R>,
    per_rank: bool,
    counts: Option<&[usize]>,
) -> Result<Option<Parts<R>>> {
    let Pairing::Ranks(tag) = par.prologue(Op::Gather, Contract::Skip)? else {
        return Ok(Some(vec![(0, out)]));
    };
    let ty = ops.pod_type();
    if !par.on_main() {
        let bytes = ops.bytes(&out);
        let sent = if bytes.len() < LEND_FROM && native.takes_parts_as_messages() {
            par.send_msg(wire::to_msg(out), 0, tag)
        } else {
            native.gather_pod(ty, bytes, None, false, tag).map(drop)
        };
        named(Op::Gather, sent)?;
        return Ok(None);
    }
    let own = out.len();
    let landing = counts.filter(|counts| {
        let messages = counts[1..]
            .iter()
            .all(|&c| ty.bytes(c) < LEND_FROM && native.takes_parts_as_messages());
        !per_rank && messages && counts[0] == own && ty.size == std::mem::size_of::<R>()
    });
    if let Some(counts) = landing {
        return named(Op::Gather, land(par, native, ops, out, counts, tag))
            .map(|all| Some(vec![(0, all)]));
    }
    let mut all = out;
    let mut counts = {
        let mut tail = ops.tail(&mut all);
        // Main's own results stay where they are (`own: false`).
        named(
            Op::Gather,
            native.gather_pod(ty, &[], Some(&mut *tail), false, tag),
        )?
    };
    if !per_rank {
        return Ok(Some(vec![(0, all)]));
    }
    counts[0] = own;
    let parts = ops.split(Box::new(all), &counts);
    Ok(Some(
        parts
            .into_iter()
            .map(|part| {
                *part
                    .downcast::<Vec<R>>()
                    .expect("the ops of R's elements make Vec<R>")
            })
            .enumerate()
            .collect(),
    ))
}

/// Main's end of a gather whose workers send their parts as messages of
/// known lengths (`counts`, main's own first, in `all`): each worker's is
/// posted on its place behind the parts before it
/// ([`NativePod::post_pod`]), so that a transport that reads messages
/// itself copies it out of its ring once, into place, rather than into a
/// message that is then copied there; one that did not land is copied
/// there. The fine map's 6 MB of workers' results on `processes:4` were
/// copied twice on main; posted, the map (inside a region) took 4.85-5.62
/// ms against 5.30-6.42 ms, and 4.02-4.54 against 4.23-4.96 ms on
/// `processes:2`, in three alternated runs of five.
fn land<R: Data>(
    par: &dyn Parallelizer,
    native: &dyn NativePod,
    ops: &'static dyn PlainOps,
    mut all: Vec<R>,
    counts: &[usize],
    tag: crate::op::Tag,
) -> Result<Vec<R>> {
    let ty = ops.pod_type();
    let total: usize = counts.iter().sum();
    all.reserve_exact(total - all.len());
    let base = all.as_mut_ptr();
    let starts: Vec<usize> = counts
        .iter()
        .scan(0, |at, &c| {
            *at += c;
            Some(*at - c)
        })
        .collect();
    // Dropped before `all` (declared after it), also on an error: no
    // landing outlives the memory it is posted on.
    let mut posted: Vec<Option<Box<dyn Posted + '_>>> = (0..counts.len())
        .map(|r| {
            (r > 0 && counts[r] > 0).then(|| {
                // SAFETY: `starts[r] + counts[r] <= total`, within the
                // capacity just reserved, and `all` is neither grown, read
                // nor written past its length until every posting is
                // dropped (below, or on an early return).
                unsafe { native.post_pod(base.add(starts[r]).cast(), ty.bytes(counts[r]), r, tag) }
            })?
        })
        .collect();
    for r in 1..counts.len() {
        let msg = par.recv_msg(r, tag)?;
        let landed = posted[r].take().is_some_and(|p| p.claim(&msg));
        if landed {
            continue;
        }
        let bytes = msg.plain_bytes(ty)?;
        if bytes.len() != ty.bytes(counts[r]) {
            return Err(Error::Length {
                op: Op::Gather,
                rank: r,
                expected: counts[r],
                actual: ty.elements(bytes.len()),
            });
        }
        // SAFETY: the part's place lies within the capacity (as above), no
        // posting covers it any more (rank `r`'s was just withdrawn), and
        // the message's bytes are another allocation; `R` is plain data of
        // `ty.size` bytes (the caller checked), so its bytes are a valid one.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                base.add(starts[r]).cast::<u8>(),
                bytes.len(),
            )
        };
    }
    drop(posted);
    // SAFETY: every rank's part is in place (landed, or copied above), and
    // together with main's own they are `total` elements, within the
    // capacity.
    unsafe { all.set_len(total) };
    Ok(all)
}
