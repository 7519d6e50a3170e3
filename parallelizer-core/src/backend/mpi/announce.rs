//! How a served main's dispatch header reaches the workers: four words sent
//! down the binomial tree of broadcasts (`crate::tree`) as point-to-point
//! messages (each rank passes them on to its children before it does
//! anything else), received with a polled `MPI_Irecv` so that idle workers
//! sleep.
//!
//! Not `MPI_Ibcast`: Open MPI runs non-blocking collectives through libnbc's
//! schedules, and every region starts with one header. A body (the task's
//! arguments, a new configuration) follows as a blocking broadcast only
//! when there is one (`serve.rs`).

use std::ffi::c_int;

use super::calls;
use super::handles::{Comm, u64_type};
use crate::error::Result;
use crate::tree::{binomial_children, binomial_parent};

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
    if comm.rank() != 0 {
        let parent = binomial_parent(comm.rank());
        calls::irecv_u64(comm, &mut header, parent, TAG_DISPATCH)?;
    }
    pass_on(comm, &header)?;
    Ok(header)
}

fn pass_on(comm: Comm, header: &[u64; WORDS]) -> Result<()> {
    let bytes: &[u8] = bytemuck::cast_slice(header);
    for child in binomial_children(comm.rank(), comm.size()) {
        calls::send(comm, u64_type(), bytes, child, TAG_DISPATCH, WORDS)?;
    }
    Ok(())
}
