//! The parts of plain-data scatters and gathers: each rank's chunk sent
//! point-to-point on the plain-data communicator (`plain_call`), where
//! nothing else sends point-to-point.
//!
//! A part of up to [`INLINE`] bytes travels whole, and its receiver posts
//! on its inbox before it comes, as `recv_pod` does: one match and one
//! copy out, where a probe first makes MPI take the part as an unexpected
//! message (copied once more) and match it twice. A longer part travels as
//! a header with its length, then its body in pieces of
//! `max_message_bytes`, received straight into place.

use std::ffi::c_int;

use super::calls;
use super::handles::{Comm, byte_type};
use super::messages::uncut;
use super::plan::pieces;
use super::wire::{INLINE, or_scratch, with_inbox};
use super::{Mpi, protocol_error};
use crate::error::{Error, Result};
use crate::parallelizer::{PlainBuf, PodType};

/// A part in one message.
const TAG_PART: c_int = 21;
/// The length (one `u64`) of a part whose body follows.
const TAG_PART_HEAD: c_int = 22;
/// The pieces of such a part's body.
const TAG_PART_BODY: c_int = 23;

thread_local! {
    /// This thread's slots of [`INLINE`] bytes, one per worker, where main's
    /// end of a gather takes the whole parts (grown once, then reused).
    static SLOTS: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A part as its first message brought it: whole (its bytes on the inbox)
/// or announced by a header (its body still to come); its length in bytes.
#[derive(Debug, Clone, Copy)]
enum Part {
    Whole(usize),
    Split(usize),
}

impl Part {
    fn len(self) -> usize {
        match self {
            Part::Whole(len) | Part::Split(len) => len,
        }
    }
}

impl Mpi {
    /// Sends `bytes` to `to` as one part.
    pub(super) fn send_part(&self, comm: Comm, bytes: &[u8], to: usize) -> Result<()> {
        let limit = self.limit(1);
        if bytes.len() <= INLINE.min(limit) {
            return calls::send_one(comm, bytes, to, TAG_PART);
        }
        send_part_head(comm, bytes.len(), to)?;
        calls::send(comm, byte_type(), bytes, to, TAG_PART_BODY, limit)
    }

    /// Sends each receiver of `parts` its part, as [`send_part`] would one
    /// after the other, but with the bodies of split parts (each in its
    /// pieces of `max_message_bytes`) sent at once ([`calls::send_all`]):
    /// the receivers copy them out of main's memory side by side, where one
    /// blocking send after another (MPI's linear scatter-v) has each wait
    /// for the one before. `meanwhile` (main's copy of its own part) runs
    /// while they copy ([`calls::send_all`]).
    ///
    /// [`send_part`]: Mpi::send_part
    pub(super) fn send_parts(
        &self,
        comm: Comm,
        parts: &[(usize, &[u8])],
        meanwhile: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let limit = self.limit(1);
        let mut bodies = Vec::with_capacity(parts.len());
        for &(to, bytes) in parts {
            if bytes.len() <= INLINE.min(limit) {
                calls::send_one(comm, bytes, to, TAG_PART)?;
            } else {
                send_part_head(comm, bytes.len(), to)?;
                bodies.extend(pieces(bytes.len(), limit).map(|piece| (to, &bytes[piece])));
            }
        }
        calls::send_all(comm, &bodies, TAG_PART_BODY, meanwhile)
    }

    /// Takes the next part's first message from `from` on `inbox`: a whole
    /// part's bytes, or the header of a split one.
    fn take_part(&self, comm: Comm, from: usize, inbox: &mut [u8]) -> Result<Part> {
        let took = calls::recv_any_tag(comm, inbox, from)?;
        let len = took.len.ok_or_else(|| uncut(from))?;
        match took.tag {
            TAG_PART => Ok(Part::Whole(len)),
            TAG_PART_HEAD if len == 8 => {
                let words: [u8; 8] = bytemuck::pod_read_unaligned(&inbox[..8]);
                Ok(Part::Split(u64::from_ne_bytes(words) as usize))
            }
            other => Err(protocol_error(format!(
                "unexpected message (tag {other}, {len} bytes) from rank {from} on the plain-data \
                 communicator"
            ))),
        }
    }

    /// Receives the body of a split part from `from` into `out` (exactly
    /// its length).
    fn recv_body_into(&self, comm: Comm, from: usize, out: &mut [u8]) -> Result<()> {
        calls::recv(comm, byte_type(), out, from, TAG_PART_BODY, self.limit(1))
    }

    /// Receives the next part from `from` into `buf`, fitted to it: its
    /// count, or (the inner error) why it had no place in `buf`, a part
    /// that is not whole elements of `ty` or does not fit; such a part is
    /// taken all the same, so the ranks stay in step. The outer error is
    /// the call's failure.
    pub(super) fn recv_part(
        &self,
        comm: Comm,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        from: usize,
    ) -> Result<Result<usize>> {
        with_inbox(|inbox| {
            let part = self.take_part(comm, from, inbox)?;
            let len = part.len();
            let fitted = if ty.whole(len) {
                buf.fit(ty.elements(len))
            } else {
                Err(not_whole(ty, len, from))
            };
            let placed = match (part, fitted) {
                (Part::Whole(_), Ok(out)) => {
                    out.copy_from_slice(&inbox[..len]);
                    Ok(())
                }
                (Part::Whole(_), Err(misfit)) => Err(misfit),
                (Part::Split(_), fitted) => {
                    let mut scratch = Vec::new();
                    let (out, misfit) = or_scratch(fitted, len, &mut scratch);
                    self.recv_body_into(comm, from, out)?;
                    misfit.map_or(Ok(()), Err)
                }
            };
            Ok(placed.map(|()| ty.elements(len)))
        })
    }

    /// Main's end of a gather into one buffer: main's own `send` (if
    /// `own`), then the part of every other rank in rank order, back to
    /// back in `recv` fitted to the total (or, if it does not fit, into
    /// scratch space, then the error). Every rank's count, main's first.
    pub(super) fn gather_parts(
        &self,
        comm: Comm,
        ty: PodType,
        send: &[u8],
        recv: &mut dyn PlainBuf,
        own: bool,
    ) -> Result<Vec<usize>> {
        // Each part's length comes with its first message, so the total is
        // known once every rank's first message is in: whole parts wait in
        // this thread's slots till then (received there, one more copy of
        // at most INLINE bytes each into place); split ones are received
        // straight into place.
        let mut slots = SLOTS.with(|cell| cell.take());
        slots.resize(slots.len().max((comm.size() - 1) * INLINE), 0);
        let mut parts = Vec::with_capacity(comm.size() - 1);
        for (slot, from) in slots.chunks_exact_mut(INLINE).zip(1..comm.size()) {
            parts.push(self.take_part(comm, from, slot)?);
        }
        let mut counts = vec![ty.elements(send.len())];
        counts.extend(parts.iter().map(|part| ty.elements(part.len())));
        let total = counts[usize::from(!own)..].iter().sum();
        // A part that is not whole elements (a rank that gathered another
        // type) has no place in `recv`; all of them go to scratch space.
        let bytes =
            parts.iter().map(|part| part.len()).sum::<usize>() + if own { send.len() } else { 0 };
        let fitted = match parts
            .iter()
            .zip(1..)
            .find(|(part, _)| !ty.whole(part.len()))
        {
            None => recv.fit(total),
            Some((part, from)) => Err(not_whole(ty, part.len(), from)),
        };
        let mut scratch = Vec::new();
        let (out, err) = or_scratch(fitted, bytes, &mut scratch);
        let mut at = 0;
        if own {
            out[..send.len()].copy_from_slice(send);
            at = send.len();
        }
        for ((part, from), slot) in parts.iter().zip(1..).zip(slots.chunks_exact(INLINE)) {
            let place = &mut out[at..at + part.len()];
            match *part {
                Part::Whole(len) => place.copy_from_slice(&slot[..len]),
                Part::Split(_) => self.recv_body_into(comm, from, place)?,
            }
            at += part.len();
        }
        SLOTS.with(|cell| cell.replace(slots));
        err.map_or(Ok(counts), Err)
    }
}

/// Sends the header of a part of `len` bytes whose body follows.
fn send_part_head(comm: Comm, len: usize, to: usize) -> Result<()> {
    calls::send_one(comm, &(len as u64).to_ne_bytes(), to, TAG_PART_HEAD)
}

/// The error of a part of `len` bytes from `from` that is not whole
/// elements of `ty`.
fn not_whole(ty: PodType, len: usize, from: usize) -> Error {
    protocol_error(format!(
        "a part of {len} bytes from rank {from} is not whole {} (every rank must pass the \
         same element type)",
        ty.name
    ))
}
