//! Held bodies: a worker's large plain result received straight into its
//! place in main's result.
//!
//! A message of plain data past [`INLINE`](super::wire::INLINE) bytes
//! travels as a header with its length, then its body. Where main waits for
//! the next result of a dynamic map (`recv_any_msg`), it takes the header
//! and leaves the body with the sender: the map gets a [`Held`] message,
//! and receives the body where it belongs ([`Held::land`]), behind the
//! results before it in the map's result, with Open MPI's one copy out of
//! the worker's memory. Received at once, the body went into fresh memory
//! first and was copied again: on the pool-style coarse map on `mpi:2`
//! (160 MB of results per worker) main's scheduling thread spent most of
//! its time faulting those messages in, copying them and unmapping them.
//! The worker's send is posted (`posted.rs`), so the worker goes on with
//! its next chunk meanwhile, as before.
//!
//! A held body that is dropped before it lands (an error on main between
//! the header and its use) is received into scratch space, so that the
//! next receive from that rank does not find it and the sender's request
//! completes.

use super::calls;
use super::handles::{Comm, byte_type};
use super::wire::{TAG_BODY, or_scratch};
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::parallelizer::{PlainBuf, PodType};

/// A message of plain data from rank `from` on `comm` whose header has
/// arrived, its body still with the sender.
#[derive(Debug)]
pub(super) struct Held {
    comm: Comm,
    from: usize,
    len: usize,
    limit: usize,
    /// Whether its body was received (else it is, into scratch space,
    /// when it is dropped).
    taken: bool,
}

impl Held {
    /// The message for a body of `len` bytes that follows from `from` in
    /// pieces of at most `limit` bytes.
    pub(super) fn msg(comm: Comm, from: usize, len: usize, limit: usize) -> Msg {
        Msg::local(Held {
            comm,
            from,
            len,
            limit,
            taken: false,
        })
    }

    /// The held body `msg` is, or the message itself.
    pub(super) fn from_msg(msg: Msg) -> std::result::Result<Held, Msg> {
        msg.into_local_of::<Held>()
    }

    /// The sender.
    pub(super) fn from(&self) -> usize {
        self.from
    }

    /// Receives the body into `buf`, fitted to it. A body that is not
    /// whole elements of `ty`, or that `buf` has no room for, is taken all
    /// the same (into scratch space), then that is the error.
    pub(super) fn land(mut self, ty: PodType, buf: &mut dyn PlainBuf) -> Result<()> {
        let fitted = if ty.whole(self.len) {
            buf.fit(ty.elements(self.len))
        } else {
            Err(Error::Codec(format!(
                "expected plain data {} but rank {} sent {} bytes, not whole {}-byte elements",
                ty.vec_name, self.from, self.len, ty.size
            )))
        };
        let mut scratch = Vec::new();
        let (out, misfit) = or_scratch(fitted, self.len, &mut scratch);
        self.taken = true;
        self.body(out)?;
        misfit.map_or(Ok(()), Err)
    }

    fn body(&self, out: &mut [u8]) -> Result<()> {
        calls::recv(self.comm, byte_type(), out, self.from, TAG_BODY, self.limit)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.taken {
            self.taken = true;
            // Nothing to report it to: the error that dropped the message
            // is the caller's.
            let _ = self.body(&mut vec![0; self.len]);
        }
    }
}
