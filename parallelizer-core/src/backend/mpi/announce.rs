//! How a served main's dispatch header reaches the workers: four words sent
//! down a binomial tree of point-to-point messages (each rank passes them
//! on to its children before it does anything else), received with a
//! polled `MPI_Irecv` so that idle workers sleep.
//!
//! Not `MPI_Ibcast`: Open MPI runs non-blocking collectives through libnbc's
//! schedules, and every region starts with one header. A body (the task's
//! arguments, a new configuration) follows as a blocking broadcast only
//! when there is one (`serve.rs`).

use std::ffi::c_int;

use super::calls;
use super::handles::{Comm, u64_type};
use crate::error::Result;

/// The tag of dispatch headers on the control communicator.
const TAG_DISPATCH: c_int = 8;

/// Words in a dispatch header.
pub(super) const WORDS: usize = 4;

/// Main: sends `header` to its children in the tree.
pub(super) fn announce(comm: Comm, header: &[u64; WORDS]) -> Result<()> {
    debug_assert_eq!(comm.rank(), 0);
    pass_on(comm, header)
}

/// A worker: waits for the next header from its parent, passes it on to its
/// children and returns it.
pub(super) fn await_header(comm: Comm) -> Result<[u64; WORDS]> {
    let mut header = [0u64; WORDS];
    if let Some(parent) = parent(comm.rank()) {
        calls::irecv_u64(comm, &mut header, parent, TAG_DISPATCH)?;
    }
    pass_on(comm, &header)?;
    Ok(header)
}

fn pass_on(comm: Comm, header: &[u64; WORDS]) -> Result<()> {
    let bytes: &[u8] = bytemuck::cast_slice(header);
    for child in children(comm.rank(), comm.size()) {
        calls::send(comm, u64_type(), bytes, child, TAG_DISPATCH, WORDS)?;
    }
    Ok(())
}

/// A rank's parent in the binomial tree rooted at 0: the rank with its
/// lowest set bit cleared.
fn parent(rank: usize) -> Option<usize> {
    (rank != 0).then(|| rank & (rank - 1))
}

/// A rank's children, the largest subtree first: `rank + 2^k` for every
/// `2^k` below its lowest set bit (below the tree's size for rank 0).
fn children(rank: usize, size: usize) -> impl Iterator<Item = usize> {
    let low = if rank == 0 {
        size.next_power_of_two()
    } else {
        rank & rank.wrapping_neg()
    };
    std::iter::successors(Some(low / 2), |m| Some(m / 2))
        .take_while(|&m| m > 0)
        .map(move |m| rank + m)
        .filter(move |&c| c < size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rank but 0 has exactly one parent, which lists it as a child,
    /// and is reached from 0.
    #[test]
    fn the_tree_covers_every_rank_once() {
        for size in 1..40 {
            let mut reached = vec![false; size];
            reached[0] = true;
            let mut todo = vec![0];
            while let Some(r) = todo.pop() {
                for c in children(r, size) {
                    assert_eq!(parent(c), Some(r), "size {size}: {c}");
                    assert!(!reached[c], "size {size}: {c} twice");
                    reached[c] = true;
                    todo.push(c);
                }
            }
            assert!(reached.iter().all(|&x| x), "size {size}");
        }
        assert_eq!(children(0, 4).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(children(2, 4).collect::<Vec<_>>(), [3]);
        assert_eq!(parent(6), Some(4));
    }
}
