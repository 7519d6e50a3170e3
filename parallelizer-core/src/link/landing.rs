//! Landings: a receive of plain data posted on the caller's buffer, so that
//! a transport that reads messages itself (processes) writes the payload
//! straight into it instead of into a message buffer that is then copied.
//! MPI's posted `MPI_Recv` is the model.
//!
//! A dynamic map's main posts one landing per worker at once, each on the
//! slot of that worker's next results in the map's result
//! ([`NativePod::post_pod`](crate::backend::NativePod::post_pod)), and
//! withdraws it as soon as a message from the worker comes that it does
//! not claim.
//!
//! [`LinkRank::recv_landing`](super::LinkRank) wraps one receive: it makes a
//! [`Landing`] of the buffer, posts it ([`Transport::post`]), receives, and
//! withdraws it ([`Transport::unpost`]) before the buffer's borrow ends,
//! also on an error or a panic. The transport lands the next data packet of
//! the call's tag from that rank if it is plain data of exactly the
//! buffer's length; any other packet arrives as usual. The message a landed
//! packet becomes shares the landing: the receiving call claims it
//! ([`Landing::claim`]), and a landed message that it did not claim (its
//! receive failed first) gets a copy of the bytes when the landing is
//! withdrawn, so that no message is lost and none reads the buffer later.
//!
//! [`Transport::post`]: super::Transport::post
//! [`Transport::unpost`]: super::Transport::unpost

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use crate::msg::Msg;
use crate::op::Tag;

use super::mailbox::counterpart;

/// Nothing has arrived.
const OPEN: u8 = 0;
/// The whole payload is in the buffer.
const LANDED: u8 = 1;
/// The receiving call took the landed message.
const CLAIMED: u8 = 2;

/// A caller's buffer posted for one plain-data packet (module docs).
pub struct Landing {
    from: usize,
    group: u64,
    tag: Tag,
    ptr: *mut u8,
    len: usize,
    state: AtomicU8,
    /// The bytes of a landed message nobody claimed, copied out when the
    /// landing was withdrawn: what the message holds from then on.
    copy: OnceLock<Vec<u8>>,
}

// SAFETY: `ptr` is only written through by the transport (`write_at`), under
// the contract of `Transport::post` (the buffer is exclusively borrowed for
// the landing until it is withdrawn), and read by `withdraw` in the thread
// that holds that borrow; everything else is atomics and a `OnceLock`.
unsafe impl Send for Landing {}
// SAFETY: as for `Send`: shared references only reach the atomics, the
// `OnceLock` and the raw pointer's address.
unsafe impl Sync for Landing {}

impl std::fmt::Debug for Landing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Landing")
            .field("from", &self.from)
            .field("tag", &self.tag)
            .field("len", &self.len)
            .finish()
    }
}

impl Landing {
    /// A landing of `buf` for the next packet of `tag` in group `group` from
    /// rank `from`. The caller keeps `buf` borrowed, and untouched, until it
    /// has withdrawn the landing ([`LinkRank::recv_landing`](super::LinkRank)).
    pub(crate) fn new(from: usize, group: u64, tag: Tag, buf: &mut [u8]) -> Arc<Landing> {
        // SAFETY: `buf` is valid for writes of its length, and the caller
        // keeps it borrowed until the landing is withdrawn.
        unsafe { Landing::raw(from, group, tag, buf.as_mut_ptr(), buf.len()) }
    }

    /// [`new`](Self::new) of the `len` bytes at `ptr`, which may be
    /// uninitialized (the spare capacity of a vector being filled).
    ///
    /// # Safety
    ///
    /// The `len` bytes at `ptr` must be valid for writes, and nobody else
    /// may read or write them, until the landing is withdrawn.
    pub(crate) unsafe fn raw(
        from: usize,
        group: u64,
        tag: Tag,
        ptr: *mut u8,
        len: usize,
    ) -> Arc<Landing> {
        Arc::new(Landing {
            from,
            group,
            tag,
            ptr,
            len,
            state: AtomicU8::new(OPEN),
            copy: OnceLock::new(),
        })
    }

    /// The rank whose packet may land.
    pub fn from(&self) -> usize {
        self.from
    }

    /// Whether a data packet of `tag` in group `group` (from the landing's
    /// rank) is one that the receive would take: a point-to-point one of
    /// the counterpart operation (a `receive` takes a `send`'s), or the
    /// collective one of exactly this call.
    pub fn takes(&self, group: u64, tag: Tag) -> bool {
        let call = if self.tag.is_p2p() {
            tag.is_p2p() && tag.op() == counterpart(self.tag.op())
        } else {
            tag == self.tag
        };
        call && self.group == group
    }

    /// Whether such a packet, whose plain-data payload is `len` bytes, is
    /// the one this landing takes.
    pub fn fits(&self, group: u64, tag: Tag, len: u64) -> bool {
        self.takes(group, tag) && self.len as u64 == len
    }

    /// The tag of the call whose packet may land.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty (never posted: see `recv_landing`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where byte `at` of the buffer is, for the transport to write
    /// `self.len() - at` bytes at most.
    ///
    /// # Safety
    ///
    /// Only while the landing is posted (between a `post` that returned
    /// `true` and the `unpost` that withdraws it), and by one writer.
    pub unsafe fn write_at(&self, at: usize) -> *mut u8 {
        assert!(at <= self.len, "a write past a landing's buffer");
        // SAFETY: `at ≤ len`, inside (or one past) the caller's buffer.
        unsafe { self.ptr.add(at) }
    }

    /// Says the whole payload is in the buffer (the transport, once its
    /// last byte is written): the message it makes of it is then
    /// [`Msg::from_shared`] of this landing.
    pub fn landed(&self) {
        self.state.store(LANDED, Ordering::Release);
    }

    /// Takes `msg` if it is this landing's, landed: its bytes are in the
    /// caller's buffer already.
    pub(crate) fn claim(self: &Arc<Self>, msg: &Msg) -> bool {
        msg.shares(self)
            && self
                .state
                .compare_exchange(LANDED, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// After the transport withdrew the landing: a landed message that was
    /// not claimed gets its own copy of the bytes, while the buffer is still
    /// the caller's.
    pub(crate) fn withdraw(&self) {
        if self.state.load(Ordering::Acquire) == LANDED {
            // SAFETY: the buffer is still exclusively borrowed for the
            // landing (module docs), the transport no longer writes it (it
            // was withdrawn), and all `len` bytes were written (LANDED).
            let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
            let _ = self.copy.set(bytes.to_vec());
        }
    }
}

/// A landed message's bytes: none until the landing is withdrawn unclaimed
/// (the buffer itself is never read through a message).
impl AsRef<[u8]> for Landing {
    fn as_ref(&self) -> &[u8] {
        self.copy.get().map_or(&[], Vec::as_slice)
    }
}
