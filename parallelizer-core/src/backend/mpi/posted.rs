//! Posted messages: sends that return before their receiver takes them
//! ([`Parallelizer::post_msg`](crate::Parallelizer::post_msg)), so that a
//! map's main can queue a rank's next chunk while the rank computes, and a
//! rank can start on that chunk while main takes its last result.
//!
//! A message past MPI's eager limit waits for its receiver: a blocking
//! send of a map's chunk would hold main's scheduler until the rank had
//! finished its current chunk, and a rank's blocking send of its result
//! would hold it until main's scheduler got a core. A posted message keeps
//! its body here, owned, with the request of its `MPI_Isend`; the body is
//! freed only once MPI says the send completed. A body whose send fails or
//! never completes (a failure, MPI finalized first) is leaked rather than
//! freed under MPI's feet. The backend posts only where a failed region
//! leaves no message behind for the next one: under ULFM (which replaces
//! the communicator), or without option `verify` (a failure inside a map
//! then ends the job).

use std::borrow::Cow;
use std::mem::ManuallyDrop;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use mpi::ffi;

use super::calls;
use super::handles::Comm;
use super::plan::pieces;
use super::wait::poll_until;
use super::wire::wire;
use crate::error::Result;
use crate::msg::Msg;

/// A message with its wire bytes ([`wire`]): plain data in place, or its
/// encoding, owned beside it. Both keep their bytes on the heap, where
/// moving the body leaves the bytes in place.
pub(super) struct Body {
    msg: Msg,
    encoded: Option<Vec<u8>>,
}

impl Body {
    /// `msg` with its wire bytes (encoded here if it is not plain data).
    pub(super) fn new(msg: Msg) -> Result<Body> {
        let encoded = match wire(&msg)? {
            Cow::Owned(bytes) => Some(bytes),
            Cow::Borrowed(_) => None,
        };
        Ok(Body { msg, encoded })
    }

    /// The message.
    pub(super) fn msg(&self) -> &Msg {
        &self.msg
    }

    /// Its wire bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        match &self.encoded {
            Some(bytes) => bytes,
            None => self.msg.pod_bytes().unwrap_or_default(),
        }
    }
}

/// One message on its way: the requests of its pieces and what they read.
struct Pending {
    /// One per piece; `MPI_REQUEST_NULL` once complete.
    requests: Vec<ffi::MPI_Request>,
    /// The receiver.
    to: usize,
    /// What the sends read.
    body: ManuallyDrop<Body>,
}

// SAFETY: an MPI request is a handle that any thread may test at the
// thread levels at which more than one thread makes MPI calls (`gate` in
// `handles.rs` enforces the others); the body is only kept alive.
unsafe impl Send for Pending {}

impl Pending {
    /// Whether the send is over: completed (then its body is freed), or
    /// failed. A failed send's body is leaked, as MPI may still read it
    /// (the test also fails once MPI is finalized); its failure is its
    /// receiver's death or its communicator's revocation, which the
    /// region's end reports (`fate.rs`), so it is not reported here: a
    /// later map of this handle must not fail with an earlier region's
    /// revoked send.
    fn over(&mut self) -> bool {
        let Ok(done) = calls::test_all(&mut self.requests, "MPI_Testall") else {
            return true;
        };
        if done {
            // SAFETY: every piece's send completed: MPI no longer reads the
            // body, which is dropped once, here, as `Pending` is dropped
            // next.
            unsafe { ManuallyDrop::drop(&mut self.body) };
        }
        done
    }
}

/// The posted messages of one handle that may still be on their way.
#[derive(Default)]
pub(super) struct Posted {
    pending: Mutex<Vec<Pending>>,
}

impl Posted {
    fn lock(&self) -> MutexGuard<'_, Vec<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts sending the wire bytes of `body` to `to` on `comm` with
    /// `tag`, in messages of at most `limit` bytes (one `MPI_Isend` each, as
    /// [`calls::send`] splits a blocking send; one message when empty), and
    /// keeps `body` until every piece's send completes. Frees the bodies of
    /// the sends that completed meanwhile.
    pub(super) fn post(
        &self,
        comm: Comm,
        body: Body,
        to: usize,
        tag: std::ffi::c_int,
        limit: usize,
    ) -> Result<()> {
        let mut pending = self.lock();
        pending.retain_mut(|p| !p.over());
        let body = ManuallyDrop::new(body);
        let (ptr, len) = (body.bytes().as_ptr(), body.bytes().len());
        let mut requests = Vec::new();
        let mut started = Ok(());
        // An empty message is one message too.
        let empty = std::iter::once(0..0).filter(|_| len == 0);
        for piece in pieces(len, limit).chain(empty) {
            // SAFETY: the piece lies within the `len` bytes of `body` at
            // `ptr`, on the heap (moving `body` into `pending` below leaves
            // them in place), which stays alive until every request
            // completes (`Pending::over`), or forever.
            let request =
                unsafe { calls::isend_raw(comm, ptr.add(piece.start), piece.len(), to, tag) };
            match request {
                Ok(request) => requests.push(request),
                Err(e) => {
                    started = Err(e);
                    break;
                }
            }
        }
        if requests.is_empty() {
            // Nothing was started: the body may go.
            drop(ManuallyDrop::into_inner(body));
        } else {
            pending.push(Pending { requests, to, body });
        }
        started
    }

    /// Waits until every posted send is over (`Pending::over`): `None`, or
    /// the receiver of one still on its way when `deadline` passed (the
    /// sends left are kept, and leaked if they never complete).
    ///
    /// The list is locked for each look only, not while the wait sleeps:
    /// another thread's map on this handle posts meanwhile.
    pub(super) fn flush(&self, deadline: Option<Instant>) -> Result<Option<usize>> {
        let done = poll_until(deadline, || {
            let mut pending = self.lock();
            pending.retain_mut(|p| !p.over());
            Ok(pending.is_empty())
        })?;
        Ok(if done {
            None
        } else {
            self.lock().first().map(|p| p.to)
        })
    }
}

impl Drop for Posted {
    fn drop(&mut self) {
        let pending = self
            .pending
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        // A send still on its way keeps its body (leaked with `Pending`'s
        // `ManuallyDrop`); one that completed frees it.
        pending.retain_mut(|p| !p.over());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::mpi::handles;
    use crate::backend::mpi::world::world;
    use crate::msg::Encoding;

    /// A posted message to self: kept until received, its bytes intact;
    /// one MPI refuses is an error that leaves nothing behind.
    #[test]
    fn a_posted_message_is_kept_until_its_receiver_takes_it() {
        let world = world().expect("MPI singleton");
        if world.size() != 1 {
            return;
        }
        // A communicator of its own: other tests probe the world's for any
        // tag, in parallel.
        let comm = handles::dup_returning_errors(world.data()).unwrap();
        let posted = Posted::default();
        let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let msg = Msg::from_bytes(Encoding::Pod, sent.clone());
        // In pieces of at most 30 000 bytes, received as such.
        posted
            .post(comm, Body::new(msg).unwrap(), 0, 91, 30_000)
            .unwrap();
        assert_eq!(posted.lock()[0].requests.len(), 4);
        // Not plain data: its encoding is kept beside it.
        let serde = Body::new(Msg::from_bytes(Encoding::Serde, vec![7; 5000])).unwrap();
        assert!(serde.encoded.is_some());
        posted.post(comm, serde, 0, 92, usize::MAX).unwrap();
        let got = calls::recv_exact::<u8>(comm, 0, 91, sent.len(), 30_000).unwrap();
        assert_eq!(got, sent);
        let got = calls::recv_exact::<u8>(comm, 0, 92, 5000, usize::MAX).unwrap();
        assert_eq!(got, vec![7; 5000]);
        // An empty message is sent too.
        let empty = Msg::from_bytes(Encoding::Pod, vec![]);
        posted
            .post(comm, Body::new(empty).unwrap(), 0, 94, 8)
            .unwrap();
        assert_eq!(calls::recv_exact::<u8>(comm, 0, 94, 0, 8).unwrap(), vec![]);
        assert_eq!(posted.flush(None).unwrap(), None);
        assert!(posted.lock().is_empty());
        // Rank 3 of a single rank: MPI refuses the send.
        let msg = Msg::from_bytes(Encoding::Pod, vec![1; 10]);
        assert!(
            posted
                .post(comm, Body::new(msg).unwrap(), 3, 93, usize::MAX)
                .is_err()
        );
        assert!(posted.lock().is_empty());
        handles::free(comm);
    }
}
