//! Plain data on the region protocol: [`LinkRank`] as a [`NativePod`].
//!
//! A buffer of 64 KiB or more is lent where the receivers can read the
//! sender's memory: on a transport whose ranks share it (threads: [`lend`])
//! and, in collectives, on one whose ranks are processes that may read
//! each other's (processes: [`remote`](super::remote) loans,
//! `process_vm_readv`; a point-to-point send there, and a broadcast or a
//! scatter's chunk of less than 1 MiB to a single worker, is a message that
//! the transport streams into the receiver's buffer: [`Landing`],
//! [`STREAM_BELOW`]). The
//! receivers copy straight out of the sender's buffer into their own and
//! acknowledge, while the sender waits — one copy, and on a broadcast or
//! scatter the workers copy in parallel (a copy of 16 MiB or more into the
//! caller's buffer also on the cores the call leaves free:
//! [`spread`](super::spread)). A receiver the system forbids to read
//! another process refuses the loan, and gets the bytes as messages.
//! Smaller buffers, and every buffer on other transports, travel as
//! messages of their bytes (copied once into the message; a transport that
//! writes plain data straight from a message, as processes does, sends them
//! as they are). Lending, acknowledging and waiting are ordinary data
//! packets of the call, so tags, aborts and deadlock detection cover them.
//!
//! A broadcast of more than [`PIECE`] bytes that is not lent goes in
//! pieces: a note with its length, then pieces of at most `PIECE` bytes,
//! each copied into one reused buffer on main and into the caller's buffer
//! on each receiver. So neither side ever holds a second copy of the whole
//! payload: a 1 GiB `broadcast_into` keeps every rank near 1 GiB of
//! resident memory, not 2, also where loans are refused.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::native::{NativePod, Posted};
use crate::op::{Op, Tag};
use crate::parallelizer::Parallelizer;
use crate::plain::{PlainBuf, PodType};
use crate::split::chunk_sizes;

use super::gather::Dest;
use super::landing::Landing;
use super::lend::{Lent, lend};
use super::part::Part;
use super::push;
use super::rank::LinkRank;
use super::remote::{CopyError, Refused, Remote, Ticket};
use super::spread::Spread;
use super::{Transport, missing};

/// Buffers of at least this many bytes are lent on transports that share
/// memory (below it, a copy into a message costs less than the wait for
/// the receiver's acknowledgement).
pub(crate) const LEND_FROM: usize = 64 << 10;

/// Receives into a caller's buffer of at least this many bytes are posted
/// on it ([`Landing`]); below it, the copy out of a message costs less.
const LAND_FROM: usize = 4 << 10;

/// Across processes, a broadcast to a single worker, or its chunk of a
/// scatter, of [`LEND_FROM`] bytes or more but fewer than this is one
/// message that the transport streams into the worker's buffer (both ranks
/// copy at once, through memory that stays mapped) rather than a loan. On
/// 2 cores, alternated builds, 800 KB on `processes:2`: `broadcast_into`
/// 34-42 µs streamed against 79-84 µs lent, the generic `broadcast` 25-63
/// against 90-96 µs; a `scatter_into` of 1.6 MB (800 KB to the worker)
/// 45-70 against 78-96 µs in 11 runs of 14, but 330-445 µs in the other 3,
/// most of them with the two vCPUs far apart (a cache line's round trip
/// about 450 ns instead of 100), where the ring's lines cross between the
/// cores twice, and the loan, which reads main's unchanged data once,
/// stayed at 85-89 µs (it had outliers of its own: 154 and 1725 µs). Not
/// from 8 MB: `broadcast_into` was no faster there (1.07-1.82 against
/// 0.98-1.56 ms) and the generic call, whose message and result are both
/// fresh memory, 3.5 times slower (5.3-5.5 against 1.4-2.0 ms). Nor to
/// several workers, which main would serve in turn where a loan lets them
/// copy at once: 800 KB on `processes:4` took 178-456 µs streamed against
/// 89-109 µs lent.
const STREAM_BELOW: usize = 1 << 20;

/// A slow rate of cross-process copies, bytes per second: how long a
/// lender expects its borrowers to take.
const COPY_RATE: f64 = 2e9;

/// The longest a lender expects its borrowers to take
/// (`Transport::expect_replies`): on a longer copy a wake-up's tens of
/// microseconds no longer matter.
const LONGEST_SPIN: Duration = Duration::from_millis(2);

/// Broadcasts of more bytes than this that are not lent go in pieces of
/// this size (see the module documentation).
pub(crate) const PIECE: usize = 32 << 20;

/// The note that opens a broadcast sent in pieces: its length in bytes.
#[derive(Serialize, Deserialize)]
struct Pieces {
    bytes: u64,
}

impl Pieces {
    /// The note a message carries, if it is one; the message back if not.
    fn from_msg(msg: Msg) -> std::result::Result<usize, Msg> {
        if msg.type_name() != Some(std::any::type_name::<Pieces>()) {
            return Err(msg);
        }
        let bytes = msg.into_value::<Pieces>().map(|p| p.bytes).unwrap_or(0);
        Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
    }
}

/// Whether a message is a loan's note (of this process or another).
pub(super) fn is_loan(msg: &Msg) -> bool {
    let name = msg.type_name();
    name == Some(std::any::type_name::<Lent>()) || name == Some(std::any::type_name::<Remote>())
}

/// Makes the note that lends `len` bytes at an offset of a loan.
type Notes<'a> = &'a dyn Fn(usize, usize) -> Msg;

impl<T: Transport> LinkRank<T> {
    /// Lends `bytes` for `f`, which sends notes made by its argument and
    /// waits for the borrowers, when buffers of `len` bytes are lent on
    /// this transport (within the process, or across processes that may
    /// read each other's memory); `None` when they are not. `spreads`: the
    /// borrowers spread their copies ([`spread`](Self::spread)); `pushes`:
    /// `f` waits for one borrower with [`await_acks`](Self::await_acks) and
    /// nothing else to do, so the notes offer to write (part of) the bytes
    /// into the borrower's buffer (`push.rs`).
    pub(super) fn with_loan<R>(
        &self,
        bytes: &[u8],
        ty: PodType,
        len: usize,
        (spreads, pushes): (bool, bool),
        f: impl FnOnce(Notes<'_>) -> R,
    ) -> Option<R> {
        if len < LEND_FROM {
            return None;
        }
        let t = self.transport();
        // Each borrower copies `len` bytes, by about then at 2 GB/s of
        // `process_vm_readv` on slow machines: the transport spins rather
        // than sleeps until then (or, on shared cores, sleeps at once).
        let copying = Duration::from_secs_f64(len as f64 / COPY_RATE).min(LONGEST_SPIN);
        if t.shares_memory() {
            // Unless the borrowers spread their copies over the free cores
            // (`spread`), which a spinning lender would hold up.
            if !spreads {
                t.expect_replies(copying);
            }
            return Some(lend(bytes, |loan| {
                f(&|offset, len| {
                    Lent {
                        loan: loan.clone(),
                        offset,
                        len,
                        ty,
                    }
                    .into_msg()
                })
            }));
        }
        if !t.reads_peer_memory() {
            return None;
        }
        let ticket = Ticket::open(bytes)?;
        t.expect_replies(copying);
        Some(f(&|offset, len| ticket.note(offset, len, ty, pushes)))
    }

    /// Whether main's broadcast or scatter of `len` bytes to its one worker
    /// goes as a message written straight from main's buffer, which the
    /// transport streams into the worker's buffer (processes: through the
    /// shared-memory rings; see [`STREAM_BELOW`]).
    fn streams_to_one(&self, len: usize) -> bool {
        self.nprocs() == 2
            && !self.transport().shares_memory()
            && (LEND_FROM..STREAM_BELOW).contains(&len)
    }

    /// How many threads a borrower's copy into `buf` in call `op` may use:
    /// one unless `buf` is the caller's own buffer (memory that is already
    /// there: copies into fresh memory are not spread, see `spread.rs`);
    /// then the cores left free by the ranks of a broadcast, which copy at
    /// once while main waits, or in other calls by every rank.
    pub(super) fn spread(&self, op: Op, buf: &mut dyn PlainBuf) -> Spread {
        if buf.fixed().is_none() {
            return Spread::ONE;
        }
        Spread::among(match op {
            Op::Broadcast => self.nprocs() - 1,
            _ => self.nprocs(),
        })
    }

    /// Takes the next packet of the call `tag` from `from` into `buf`:
    /// copies lent bytes out of the lender's buffer and acknowledges them
    /// (also when they do not fit, so the lender is never left waiting),
    /// or copies a message's bytes. A copy across processes that the
    /// system forbids is refused, and the bytes then come as a message.
    fn take_plain(&self, from: usize, tag: Tag, ty: PodType, buf: &mut dyn PlainBuf) -> Result<()> {
        let msg = self.recv_raw(from, tag)?;
        self.take_msg(msg, from, tag, ty, buf)
    }

    /// [`take_plain`](Self::take_plain) of a packet already received.
    pub(super) fn take_msg(
        &self,
        msg: Msg,
        from: usize,
        tag: Tag,
        ty: PodType,
        buf: &mut dyn PlainBuf,
    ) -> Result<()> {
        self.take_part(Part::of(msg)?, from, tag, ty, buf)
    }

    /// [`take_msg`](Self::take_msg) of a packet's part.
    fn take_part(
        &self,
        part: Part,
        from: usize,
        tag: Tag,
        ty: PodType,
        buf: &mut dyn PlainBuf,
    ) -> Result<()> {
        let spread = self.spread(tag.op(), buf);
        match part {
            Part::Lent(lent) => {
                let copied = lent.check(ty).and_then(|()| {
                    let dst = buf.fit(lent.elements())?;
                    lent.loan.copy_to(lent.offset, dst, spread)
                });
                let acked = self.ack(from, tag);
                copied.and(acked)
            }
            Part::Remote(note) => {
                // A caller's buffer of fixed length cannot be given up: it
                // is never pushed into (and spreads instead).
                let asks = push::asks(&note, buf.can_abandon());
                let dst = note
                    .check(ty)
                    .and_then(|()| buf.fit(ty.elements(note.len())));
                let copied = match dst {
                    Ok(dst) if asks => match self.copy_pushed(&note, dst, from, tag) {
                        Ok(copied) => Ok(copied),
                        Err(e) => {
                            // The lender may still be writing into it.
                            buf.abandon();
                            return Err(e);
                        }
                    },
                    dst => dst.map(|dst| note.copy_to(dst, spread)),
                };
                match copied {
                    Ok(Err(CopyError::Refused(refused))) => {
                        self.send_msg(refused.into_msg(), from, tag)?;
                        self.take_plain(from, tag, ty, buf)
                    }
                    copied => {
                        let acked = self.ack(from, tag);
                        copied.and_then(|c| c.map_err(Error::from)).and(acked)
                    }
                }
            }
            Part::Msg(msg) => match Pieces::from_msg(msg) {
                Ok(total) => self.take_pieces(from, tag, ty, buf, total),
                Err(msg) => msg.copy_into(ty, buf),
            },
        }
    }

    /// Takes the pieces of a broadcast of `total` bytes into `buf`. A
    /// buffer of the wrong length, or pieces of another type, is an error
    /// after every piece was taken (none is left for a later call).
    fn take_pieces(
        &self,
        from: usize,
        tag: Tag,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        total: usize,
    ) -> Result<()> {
        let mut dst = buf.fit(ty.elements(total));
        let mut at = 0;
        while at < total {
            let msg = self.recv_raw(from, tag)?;
            let Some(bytes) = msg.pod_bytes() else {
                return Err(Error::Protocol(format!(
                    "{}: a piece of a broadcast from rank {from} is not plain data",
                    tag.op()
                )));
            };
            let len = bytes.len();
            if len == 0 || at + len > total {
                return Err(Error::Protocol(format!(
                    "{}: a piece of {len} bytes at byte {at} of a broadcast of {total}",
                    tag.op()
                )));
            }
            if let Ok(out) = &mut dst {
                match msg.plain_bytes(ty) {
                    Ok(bytes) => out[at..at + len].copy_from_slice(bytes),
                    Err(e) => dst = Err(e),
                }
            }
            at += len;
        }
        dst.map(drop)
    }

    /// Waits for the acknowledgement of every rank of `ranks`; returns the
    /// ranks that refused to copy across processes (then this transport
    /// lends no more, and the caller sends them the bytes).
    /// Borrowers that asked the lender to write part of their copy of
    /// `lent` into their memory get it first (`push.rs`).
    pub(super) fn await_acks(
        &self,
        ranks: impl IntoIterator<Item = usize>,
        lent: &[u8],
        tag: Tag,
    ) -> Result<Vec<usize>> {
        let mut refused = Vec::new();
        for r in ranks {
            let msg = self.recv_raw(r, tag)?;
            if Refused::from_msg(&self.serve_push(msg, lent, r, tag)?) {
                refused.push(r);
            }
        }
        if !refused.is_empty() {
            self.transport().peer_memory_refused();
        }
        Ok(refused)
    }

    /// Sends `bytes` to `to` as messages (a rank that refused the loan of a
    /// broadcast or a scatter, which takes them with `take_plain`): one
    /// message, or pieces when there are more than `PIECE`.
    pub(super) fn push(&self, to: usize, ty: PodType, bytes: &[u8], tag: Tag) -> Result<()> {
        if bytes.len() <= PIECE {
            return self.send_msg(Msg::plain_copy(ty, bytes), to, tag);
        }
        let note = Msg::new(Pieces {
            bytes: bytes.len() as u64,
        });
        self.send_msg(note, to, tag)?;
        for piece in bytes.chunks(PIECE) {
            self.send_msg(Msg::plain_copy(ty, piece), to, tag)?;
        }
        Ok(())
    }
}

impl<T: Transport> NativePod for LinkRank<T> {
    fn in_process(&self) -> bool {
        self.transport().shares_memory()
    }

    fn broadcast_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, tag: Tag) -> Result<()> {
        if !self.on_main() {
            return self.take_broadcast(ty, buf, tag);
        }
        let spreads = self.spread(tag.op(), buf).spreads(buf.bytes().len());
        let bytes: &[u8] = buf.bytes();
        if self.streams_to_one(bytes.len()) {
            return self.send_plain(ty, bytes, 1, tag);
        }
        if let Some(lent) = self.broadcast_lent(ty, bytes, spreads, tag) {
            return lent;
        }
        if bytes.len() <= PIECE {
            // One copy, shared by every receiver (one memfd on processes).
            let shared =
                Msg::from_shared(Encoding::Pod, Arc::new(bytes.to_vec())).sent_as(ty.vec_name);
            return self.broadcast_msg(Some(shared), tag).map(drop);
        }
        let note = Msg::new(Pieces {
            bytes: bytes.len() as u64,
        });
        self.broadcast_msg(Some(note), tag)?;
        let mut spare = Vec::with_capacity(PIECE);
        for piece in bytes.chunks(PIECE) {
            spare.clear();
            spare.extend_from_slice(piece);
            let shared = Arc::new(spare);
            let msg = Msg::from_shared(Encoding::Pod, shared.clone()).sent_as(ty.vec_name);
            self.broadcast_msg(Some(msg), tag)?;
            // The transport is done with it unless it still holds the
            // message (say, queued in memory): then a fresh buffer.
            spare = Arc::try_unwrap(shared).unwrap_or_else(|_| Vec::with_capacity(PIECE));
        }
        Ok(())
    }

    fn scatter_pod(
        &self,
        ty: PodType,
        send: Option<&[u8]>,
        recv: Option<&mut dyn PlainBuf>,
        tag: Tag,
    ) -> Result<()> {
        if !self.on_main() {
            let recv = recv.ok_or_else(|| missing(tag.op(), "buffer"))?;
            return self.take_or_land(0, tag, ty, recv);
        }
        let send = send.ok_or_else(|| missing(tag.op(), "data"))?;
        let counts = chunk_sizes(ty.elements(send.len()), self.nprocs());
        let mut ranges = Vec::with_capacity(counts.len());
        let mut at = 0;
        for &c in &counts {
            ranges.push(at..at + ty.bytes(c));
            at += ty.bytes(c);
        }
        // Main with a chunk of its own to copy first does not offer to push
        // (`push.rs`); nor to several workers, which it would serve in turn.
        let pushes = recv.is_none() && self.nprocs() == 2;
        let mut recv = recv;
        let mut own = || match recv.take() {
            Some(recv) => {
                recv.fit(counts[0])?
                    .copy_from_slice(&send[ranges[0].clone()]);
                Ok(())
            }
            None => Ok(()),
        };
        let workers = 1..self.nprocs();
        let chunk = ranges.get(1).map_or(0, |r| r.len());
        if self.streams_to_one(chunk) {
            self.send_plain(ty, &send[ranges[1].clone()], 1, tag)?;
            return own();
        }
        let lent = self.with_loan(send, ty, chunk, (false, pushes), |note| {
            for r in workers.clone() {
                self.send_msg(note(ranges[r].start, ranges[r].len()), r, tag)?;
            }
            // Main copies its chunk while the workers copy theirs.
            let mine = own();
            let acked = self.await_acks(workers.clone(), send, tag);
            mine.and(acked)
        });
        if let Some(refused) = lent {
            for r in refused? {
                self.push(r, ty, &send[ranges[r].clone()], tag)?;
            }
            return own();
        }
        for r in workers {
            self.send_msg(Msg::plain_copy(ty, &send[ranges[r].clone()]), r, tag)?;
        }
        own()
    }

    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        recv: Option<&mut dyn PlainBuf>,
        own: bool,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        self.gather_to(ty, send, recv.map(|recv| Dest::One { recv, own }), tag)
    }

    fn gather_pod_parts(
        &self,
        ty: PodType,
        send: &[u8],
        parts: Option<&mut [&mut dyn PlainBuf]>,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        self.gather_to(ty, send, parts.map(Dest::Each), tag)
    }

    /// Main reads every part of a gather as a packet of the call: a loan's
    /// note or the bytes themselves.
    fn takes_parts_as_messages(&self) -> bool {
        true
    }

    /// Lent to a rank of this process; across processes, one message
    /// written from `buf` as it is: the transport streams it to the
    /// receiver, which copies it straight into its own buffer (a landing)
    /// as it arrives, where a cross-process loan waits for the receiver's
    /// one `process_vm_readv` — measured slower than two copies made at
    /// once (1 MiB: 122-139 µs against 78-87 µs on 2 cores).
    fn send_pod(&self, ty: PodType, buf: &[u8], to: usize, tag: Tag) -> Result<()> {
        if self.transport().shares_memory() {
            return self.send_lent(ty, buf, to, tag);
        }
        self.send_plain(ty, buf, to, tag)
    }

    fn recv_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, from: usize, tag: Tag) -> Result<()> {
        self.take_or_land(from, tag, ty, buf)
    }

    /// Lends across processes only: ranks of one process move their
    /// results as they are.
    fn lend_pod(&self, ty: PodType, buf: &[u8], to: usize, tags: (Tag, Tag)) -> Result<bool> {
        let t = self.transport();
        if t.shares_memory() || !t.reads_peer_memory() || buf.len() < LEND_FROM {
            return Ok(false);
        }
        self.send_lent_acked(ty, buf, to, tags).map(|()| true)
    }

    fn take_lent(
        &self,
        msg: Msg,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        from: usize,
        ack: Tag,
    ) -> Result<Option<Msg>> {
        match Part::of(msg)? {
            Part::Msg(msg) => Ok(Some(msg)),
            loan => self.take_part(loan, from, ack, ty, buf).map(|()| None),
        }
    }

    unsafe fn post_pod(
        &self,
        dst: *mut u8,
        len: usize,
        from: usize,
        tag: Tag,
    ) -> Option<Box<dyn Posted + '_>> {
        if len == 0 || crate::parallelizer::check_rank(self, from).is_err() {
            return None;
        }
        // SAFETY: the caller keeps the `len` bytes at `dst` valid and
        // untouched until the `Posted` is dropped, which withdraws the
        // landing first (`post_pod`'s contract is the landing's).
        let landing = unsafe { Landing::raw(from, 0, tag, dst, len) };
        let t = self.transport();
        t.post(&landing).then(|| {
            let posted: Box<dyn Posted + '_> = Box::new(PostedOn { t, landing });
            posted
        })
    }
}

/// A landing posted on transport `t` ([`NativePod::post_pod`], a
/// `receive_into`), withdrawn when dropped.
struct PostedOn<'a, T: Transport> {
    t: &'a T,
    landing: Arc<Landing>,
}

impl<T: Transport> Posted for PostedOn<'_, T> {
    fn claim(&self, msg: &Msg) -> bool {
        self.landing.claim(msg)
    }
}

impl<T: Transport> Drop for PostedOn<'_, T> {
    fn drop(&mut self) {
        self.t.unpost(&self.landing);
        self.landing.withdraw();
    }
}

impl<T: Transport> LinkRank<T> {
    /// Sends the plain data `bytes` of type `ty` to `to` as one data packet
    /// of the call `tag` ([`Transport::send_plain`]).
    pub(super) fn send_plain(&self, ty: PodType, bytes: &[u8], to: usize, tag: Tag) -> Result<()> {
        crate::parallelizer::check_rank(self, to)?;
        self.before_send([to].into_iter())?;
        let sent = self
            .transport()
            .send_plain(to, (self.region(), 0, tag), ty, bytes);
        self.after_send(&[to], sent)
    }

    /// Lends `buf` to `to` where it can read it (a rank of this process, or
    /// of another that may read this one's memory: a worker's part of a
    /// gather, which main copies while the other workers' wait), else
    /// sends it as one message (the receive may be a generic one, which
    /// takes a single message; pieces are for broadcasts).
    pub(super) fn send_lent(&self, ty: PodType, buf: &[u8], to: usize, tag: Tag) -> Result<()> {
        self.send_lent_acked(ty, buf, to, (tag, tag))
    }

    /// [`send_lent`](Self::send_lent) whose note goes under `tag` and the
    /// rest of the loan (the acknowledgement, a push, the bytes of a
    /// refused loan) under `ack`.
    fn send_lent_acked(
        &self,
        ty: PodType,
        buf: &[u8],
        to: usize,
        (tag, ack): (Tag, Tag),
    ) -> Result<()> {
        let lent = self.with_loan(buf, ty, buf.len(), (false, true), |note| {
            self.send_msg(note(0, buf.len()), to, tag)?;
            self.await_acks([to], buf, ack)
        });
        if lent.transpose()?.is_some_and(|refused| refused.is_empty()) {
            return Ok(());
        }
        self.send_plain(ty, buf, to, ack)
    }

    /// Receives the next packet of `tag` from `from`. Plain data of exactly
    /// `buf`'s length lands in it where `buf` is the caller's own buffer of
    /// [`LAND_FROM`] bytes or more (`None`, once its type is checked);
    /// anything else is returned for the caller to take.
    pub(super) fn recv_or_land(
        &self,
        from: usize,
        tag: Tag,
        ty: PodType,
        buf: &mut dyn PlainBuf,
    ) -> Result<Option<Msg>> {
        if let Some(dst) = buf.fixed().filter(|d| d.len() >= LAND_FROM) {
            return match self.recv_landing(from, tag, dst)? {
                Ok(landed) => landed.check_plain_type(ty).map(|()| None),
                Err(msg) => Ok(Some(msg)),
            };
        }
        self.recv_raw(from, tag).map(Some)
    }

    /// Takes the next packet of `tag` from `from` into `buf` (see
    /// [`take_msg`](Self::take_msg)), landing it there where it can
    /// ([`recv_or_land`](Self::recv_or_land)).
    fn take_or_land(
        &self,
        from: usize,
        tag: Tag,
        ty: PodType,
        buf: &mut dyn PlainBuf,
    ) -> Result<()> {
        match self.recv_or_land(from, tag, ty, buf)? {
            None => Ok(()),
            Some(msg) => self.take_msg(msg, from, tag, ty, buf),
        }
    }

    /// Receives the next packet of `tag` from `from` with `dst` posted for
    /// it ([`Landing`]): `Ok` the message if it landed in `dst`, `Err` the
    /// message if it did not (another kind of packet, or another length).
    /// The landing is withdrawn before this returns, also on an error or a
    /// panic, so `dst` is the caller's again.
    fn recv_landing(&self, from: usize, tag: Tag, dst: &mut [u8]) -> Result<Result<Msg, Msg>> {
        let t = self.transport();
        let landing = Landing::new(from, 0, tag, dst);
        if !t.post(&landing) {
            return self.recv_raw(from, tag).map(Err);
        }
        // Withdrawn when the receive is over, however it ends.
        let posted = PostedOn { t, landing };
        let msg = self.recv_raw(from, tag)?;
        let landed = posted.claim(&msg);
        drop(posted);
        Ok(if landed { Ok(msg) } else { Err(msg) })
    }
}
