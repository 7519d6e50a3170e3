//! The gather of a static map's results when they are plain numbers and
//! the backend moves plain data between processes (processes, MPI): the
//! workers' results land behind main's own, in main's vector, which is the
//! map's result. Gathered as one vector per rank instead, they were copied
//! once more into it (`concat`), on fresh memory faulted in page by page.
//! The McUtils map (80 M `u32` results) went from 0.62–0.91 s to 0.46 s on
//! processes:2, 0.73 to 0.50 s on processes:4, 0.53 to 0.46 s on mpi:2 and
//! 0.67 to 0.50 s on mpi:4 (rayon: 0.53 s).

use crate::error::Result;
use crate::msg::Data;
use crate::native::NativePod;
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
/// on workers.
pub(super) fn gather<R: Data>(
    par: &dyn Parallelizer,
    (native, ops): (&dyn NativePod, &'static dyn PlainOps),
    out: Vec<R>,
    per_rank: bool,
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
