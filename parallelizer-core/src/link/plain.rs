//! Plain data on the region protocol: [`LinkRank`] as a [`NativePod`].
//!
//! On a transport whose ranks share memory (threads), a buffer of 64 KiB or
//! more is lent ([`lend`]): the receivers copy straight out of the
//! sender's buffer and acknowledge, while the sender waits — one copy, and
//! on a broadcast or scatter the workers copy in parallel. Smaller buffers,
//! and every buffer on other transports, travel as messages of their bytes
//! (copied once into the message; a transport that writes plain data
//! straight from a message, as processes does, sends them as they are).
//! Lending, acknowledging and waiting are ordinary data packets of the
//! call, so tags, aborts and deadlock detection cover them.
//!
//! A broadcast of more than [`PIECE`] bytes that is not lent goes in
//! pieces: a note with its length, then pieces of at most `PIECE` bytes,
//! each copied into one reused buffer on main and into the caller's buffer
//! on each receiver. So neither side ever holds a second copy of the whole
//! payload: a 1 GiB `broadcast_into` on processes keeps every rank near
//! 1 GiB of resident memory, not 2.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::native::NativePod;
use crate::op::{Op, Tag};
use crate::parallelizer::Parallelizer;
use crate::plain::{PlainBuf, PodType};
use crate::split::chunk_sizes;

use super::Transport;
use super::lend::{Lent, lend};
use super::rank::LinkRank;

/// Buffers of at least this many bytes are lent on transports that share
/// memory (below it, a copy into a message costs less than the wait for
/// the receiver's acknowledgement).
pub(crate) const LEND_FROM: usize = 64 << 10;

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

/// A rank that receives passed no buffer, or main no data.
fn missing(op: Op, what: &str) -> Error {
    Error::ContractViolation(format!("{op}: this rank passed no {what}"))
}

impl<T: Transport> LinkRank<T> {
    /// Whether a buffer of `bytes` is lent rather than copied.
    fn lends(&self, bytes: usize) -> bool {
        bytes >= LEND_FROM && self.transport().shares_memory()
    }

    /// Takes the next packet of the call `tag` from `from` into `buf`:
    /// copies lent bytes out of the lender's buffer and acknowledges them
    /// (also when they do not fit, so the lender is never left waiting),
    /// or copies a message's bytes.
    fn take_plain(&self, from: usize, tag: Tag, ty: PodType, buf: &mut dyn PlainBuf) -> Result<()> {
        let msg = self.recv_raw(from, tag)?;
        match Lent::from_msg(msg) {
            Ok(lent) => {
                let copied = lent.check(ty).and_then(|()| {
                    let dst = buf.fit(lent.elements())?;
                    lent.loan.copy_to(lent.offset, dst)
                });
                let acked = self.ack(from, tag);
                copied.and(acked)
            }
            Err(msg) => match Pieces::from_msg(msg) {
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

    /// Waits for the acknowledgement of every rank of `ranks`.
    fn await_acks(&self, ranks: impl IntoIterator<Item = usize>, tag: Tag) -> Result<()> {
        for r in ranks {
            self.recv_raw(r, tag)?;
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
            return self.take_plain(0, tag, ty, buf);
        }
        let bytes: &[u8] = buf.bytes();
        if self.lends(bytes.len()) {
            let workers = 1..self.nprocs();
            return lend(bytes, |loan| {
                for r in workers.clone() {
                    let note = Lent {
                        loan: loan.clone(),
                        offset: 0,
                        len: bytes.len(),
                        ty,
                    };
                    self.send_msg(note.into_msg(), r, tag)?;
                }
                self.await_acks(workers, tag)
            });
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
            return self.take_plain(0, tag, ty, recv);
        }
        let send = send.ok_or_else(|| missing(tag.op(), "data"))?;
        let counts = chunk_sizes(ty.elements(send.len()), self.nprocs());
        let mut ranges = Vec::with_capacity(counts.len());
        let mut at = 0;
        for &c in &counts {
            ranges.push(at..at + ty.bytes(c));
            at += ty.bytes(c);
        }
        let own = |recv: Option<&mut dyn PlainBuf>| match recv {
            Some(recv) => {
                recv.fit(counts[0])?
                    .copy_from_slice(&send[ranges[0].clone()]);
                Ok(())
            }
            None => Ok(()),
        };
        let workers = 1..self.nprocs();
        if self.lends(ranges.get(1).map_or(0, |r| r.len())) {
            return lend(send, |loan| {
                for r in workers.clone() {
                    let note = Lent {
                        loan: loan.clone(),
                        offset: ranges[r].start,
                        len: ranges[r].len(),
                        ty,
                    };
                    self.send_msg(note.into_msg(), r, tag)?;
                }
                // Main copies its chunk while the workers copy theirs.
                let mine = own(recv);
                let acked = self.await_acks(workers, tag);
                mine.and(acked)
            });
        }
        for r in workers {
            self.send_msg(Msg::plain_copy(ty, &send[ranges[r].clone()]), r, tag)?;
        }
        own(recv)
    }

    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        recv: Option<&mut dyn PlainBuf>,
        own: bool,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        if !self.on_main() {
            if self.lends(send.len()) {
                return lend(send, |loan| {
                    let note = Lent {
                        loan: loan.clone(),
                        offset: 0,
                        len: send.len(),
                        ty,
                    };
                    self.send_msg(note.into_msg(), 0, tag)?;
                    self.await_acks([0], tag).map(|()| Vec::new())
                });
            }
            self.send_msg(Msg::plain_copy(ty, send), 0, tag)?;
            return Ok(Vec::new());
        }
        let mut parts = Vec::with_capacity(self.nprocs());
        for r in 1..self.nprocs() {
            match self.recv_raw(r, tag) {
                Ok(msg) => parts.push(Lent::from_msg(msg)),
                Err(e) => {
                    let _ = self.ack_lent(&parts, tag);
                    return Err(e);
                }
            }
        }
        let copied = copy_parts(ty, send, &parts, recv, own);
        let acked = self.ack_lent(&parts, tag);
        let counts = copied?;
        acked.map(|()| counts)
    }

    fn send_pod(&self, ty: PodType, buf: &[u8], to: usize, tag: Tag) -> Result<()> {
        if self.lends(buf.len()) {
            return lend(buf, |loan| {
                let note = Lent {
                    loan: loan.clone(),
                    offset: 0,
                    len: buf.len(),
                    ty,
                };
                self.send_msg(note.into_msg(), to, tag)?;
                self.await_acks([to], tag)
            });
        }
        self.send_msg(Msg::plain_copy(ty, buf), to, tag)
    }

    fn recv_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, from: usize, tag: Tag) -> Result<()> {
        self.take_plain(from, tag, ty, buf)
    }
}

impl<T: Transport> LinkRank<T> {
    /// Acknowledges every lent part of a gather (rank `i + 1` lent part
    /// `i`); the first failure is returned, after trying them all.
    fn ack_lent(&self, parts: &[std::result::Result<Lent, Msg>], tag: Tag) -> Result<()> {
        let mut first = Ok(());
        for (i, part) in parts.iter().enumerate() {
            if part.is_ok() {
                let acked = self.ack(i + 1, tag);
                if first.is_ok() {
                    first = acked;
                }
            }
        }
        first
    }
}

/// Main's end of a gather: every part's count, and (into `recv`, fitted to
/// the total) the parts back to back, main's own unless `own` is false.
fn copy_parts(
    ty: PodType,
    send: &[u8],
    parts: &[std::result::Result<Lent, Msg>],
    recv: Option<&mut dyn PlainBuf>,
    own: bool,
) -> Result<Vec<usize>> {
    let recv = recv.ok_or_else(|| missing(Op::Gather, "buffer"))?;
    let mut counts = vec![ty.elements(send.len())];
    for part in parts {
        counts.push(match part {
            Ok(lent) => {
                lent.check(ty)?;
                lent.elements()
            }
            Err(msg) => ty.elements(msg.plain_bytes(ty)?.len()),
        });
    }
    let skip = usize::from(!own);
    let out = recv.fit(counts[skip..].iter().sum())?;
    let mut at = 0;
    if own {
        out[..send.len()].copy_from_slice(send);
        at = send.len();
    }
    for part in parts {
        match part {
            Ok(lent) => {
                lent.loan
                    .copy_to(lent.offset, &mut out[at..at + lent.len])?;
                at += lent.len;
            }
            Err(msg) => {
                let bytes = msg.plain_bytes(ty)?;
                out[at..at + bytes.len()].copy_from_slice(bytes);
                at += bytes.len();
            }
        }
    }
    Ok(counts)
}
