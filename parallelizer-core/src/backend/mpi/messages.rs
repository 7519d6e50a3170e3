//! The parallelizer's messages and collectives on one communicator (the
//! region's or a group's, which [`Mpi::data_call`] picks): how a message
//! of any size travels point to point, and the broadcast, scatter and
//! gather of messages, over the calls of `calls.rs`.

use std::ffi::c_int;
use std::time::{Duration, Instant};

use super::handles::{Comm, byte_type, u64_type};
use super::wait::Backoff;
use super::{
    Mpi, TAG_BODY, TAG_HEADER, TAG_POD, TAG_POD8, TAG_SERDE, arrived, bcast_framed, bcast_words,
    calls, contract_error, describe, fate, lengths, missing, protocol_error, receive_timeout,
    verify, wire,
};
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::op::Op;

impl Mpi {
    pub(super) fn send_bytes(&self, comm: Comm, msg: &Msg, bytes: &[u8], to: usize) -> Result<()> {
        if bytes.len() <= self.limit(1) {
            // One MPI message; the receiver learns its size from the probe.
            let tag = match msg.encoding() {
                Encoding::Pod if msg.pod_align() == 8 && bytes.len().is_multiple_of(8) => TAG_POD8,
                Encoding::Pod => TAG_POD,
                _ => TAG_SERDE,
            };
            return calls::send_one(comm, bytes, to, tag);
        }
        // Too large for one MPI message: a header, then the pieces.
        let header = describe(msg.encoding(), bytes.len());
        let header = bytemuck::cast_slice(&header);
        calls::send(comm, u64_type(), header, to, TAG_HEADER, 2)?;
        calls::send(comm, byte_type(), bytes, to, TAG_BODY, self.limit(1))
    }

    /// When a receive on this rank gives up: outside a region (SPMD) the
    /// timeout bounds each receive. Inside one the region's deadline bounds
    /// the wait: under ULFM the watchdog releases it (`fate.rs`); without,
    /// it is polled until the deadline.
    pub(super) fn recv_deadline(&self, cur: Option<&fate::Current>) -> Option<Instant> {
        match cur {
            None => self.core.config().timeout.map(|t| Instant::now() + t),
            Some(_) if self.world.faults.is_ulfm() => None,
            Some(cur) => cur.deadline,
        }
    }

    pub(super) fn recv_bytes(
        &self,
        comm: Comm,
        from: usize,
        deadline: Option<Instant>,
    ) -> Result<Msg> {
        let Some((tag, count)) = calls::probe_any(comm, from, deadline)? else {
            return Err(self.gave_up(from));
        };
        self.recv_probed(comm, from, tag, count)
    }

    /// The first message from any rank of `from`, or `None` at `until`.
    /// Polls each rank's probe in turn (a probe of one source never returns
    /// a message of another, which could not be left for later), spinning,
    /// yielding and then sleeping briefly between rounds (`wait.rs`) so that
    /// the rank's own work keeps its core.
    pub(super) fn recv_any_on(
        &self,
        comm: Comm,
        from: &[usize],
        until: Option<Instant>,
        deadline: Option<Instant>,
    ) -> Result<Option<(usize, Msg)>> {
        let mut backoff = Backoff::new(64, Duration::from_micros(50));
        loop {
            for &r in from {
                if let Some((tag, count)) = calls::probe_any(comm, r, Some(Instant::now()))? {
                    return self.recv_probed(comm, r, tag, count).map(|m| Some((r, m)));
                }
            }
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                return Ok(None);
            }
            if deadline.is_some_and(|d| now >= d) {
                return Err(self.gave_up(from[0]));
            }
            backoff.pause();
        }
    }

    /// The error of a receive from `from` that gave up at its deadline;
    /// inside a region (the run's deadline) the watchdog learns that this
    /// rank was waiting in MPI, not late.
    pub(super) fn gave_up(&self, from: usize) -> Error {
        if let Some(cur) = fate::current() {
            cur.note_waited_past();
        }
        receive_timeout(from, self.core.config().timeout.unwrap_or_default())
    }

    /// The message whose probe found MPI tag `tag` and `count` bytes from
    /// rank `from` on `comm`.
    fn recv_probed(&self, comm: Comm, from: usize, tag: c_int, count: usize) -> Result<Msg> {
        match tag {
            TAG_POD => Ok(Msg::from_bytes(
                Encoding::Pod,
                calls::recv_exact::<u8>(comm, from, tag, count)?,
            )),
            TAG_POD8 if count.is_multiple_of(8) => {
                let words = calls::recv_exact::<u64>(comm, from, tag, count)?;
                Ok(Msg::from_words(words, count))
            }
            TAG_SERDE => Ok(Msg::from_bytes(
                Encoding::Serde,
                calls::recv_exact::<u8>(comm, from, tag, count)?,
            )),
            TAG_HEADER => {
                let mut header = [0u64; 2];
                let words = bytemuck::cast_slice_mut(&mut header);
                calls::recv(comm, u64_type(), words, from, TAG_HEADER, 2)?;
                let mut body = vec![0u8; header[1] as usize];
                calls::recv(comm, byte_type(), &mut body, from, TAG_BODY, self.limit(1))?;
                Ok(arrived(&header, body))
            }
            verify::TAG_FINISHED => match fate::current() {
                Some(cur) => Err(self.finished_peer(&cur, comm, from)),
                None => Err(protocol_error(format!(
                    "a note of the end of a region from rank {from} outside a region"
                ))),
            },
            other => Err(protocol_error(format!(
                "unexpected point-to-point message (tag {other}) from rank {from}: \
                 is another library using the parallelizer's communicator?"
            ))),
        }
    }

    pub(super) fn broadcast_on(&self, comm: Comm, msg: Option<Msg>) -> Result<Msg> {
        if comm.size() == 1 {
            return msg.ok_or_else(|| missing(Op::Broadcast));
        }
        let (mut header, body) = match &msg {
            Some(m) if comm.rank() == 0 => {
                let bytes = wire(m)?.into_owned();
                (describe(m.encoding(), bytes.len()), Some(bytes))
            }
            None if comm.rank() != 0 => ([0; 2], None),
            _ => return Err(missing(Op::Broadcast)),
        };
        let limit = self.limit(1);
        let bytes = bcast_framed(comm, 0, &mut header, body, limit)?;
        match msg {
            Some(m) => Ok(m),
            None => Ok(arrived(&header, bytes)),
        }
    }

    pub(super) fn scatter_on(&self, comm: Comm, chunks: Option<Vec<Msg>>) -> Result<Msg> {
        let (rank, size) = (comm.rank(), comm.size());
        // Main encodes the workers' chunks back to back; its own stays a value.
        let mut own = None;
        let mut send = Vec::new();
        let mut header = vec![0u64; 2 * size];
        if rank == 0 {
            let chunks = chunks.ok_or_else(|| missing(Op::Scatter))?;
            if chunks.len() != size {
                return Err(contract_error(format!(
                    "scatter needs one chunk per rank: {} chunks for {size} ranks",
                    chunks.len()
                )));
            }
            let mut chunks = chunks.into_iter();
            own = chunks.next();
            for (i, chunk) in chunks.enumerate() {
                let before = send.len();
                match chunk.pod_bytes() {
                    Some(b) => send.extend_from_slice(b),
                    None => chunk.encode_into(&mut send)?,
                }
                let desc = describe(chunk.encoding(), send.len() - before);
                header[2 * (i + 1)..2 * (i + 2)].copy_from_slice(&desc);
            }
        } else if chunks.is_some() {
            return Err(missing(Op::Scatter));
        }
        bcast_words(comm, &mut header, 0)?;
        let counts = lengths(&header);
        let mut mine = vec![0u8; counts[rank]];
        let send = (rank == 0).then_some(&send[..]);
        let limit = self.limit(1);
        calls::scatterv(comm, byte_type(), send, &counts, &mut mine, limit)?;
        match own {
            Some(m) => Ok(m),
            None => Ok(arrived(&header[2 * rank..], mine)),
        }
    }

    pub(super) fn gather_on(&self, comm: Comm, msg: Msg) -> Result<Option<Vec<Msg>>> {
        let (rank, size) = (comm.rank(), comm.size());
        // Main's own message stays a value and is not sent.
        let bytes = if rank == 0 {
            Vec::new()
        } else {
            wire(&msg)?.into_owned()
        };
        let header = calls::allgather_u64(comm, &describe(msg.encoding(), bytes.len()))?;
        let counts = lengths(&header);
        let mut all = (rank == 0).then(|| vec![0u8; counts.iter().sum()]);
        let limit = self.limit(1);
        calls::gatherv(
            comm,
            byte_type(),
            &bytes,
            &counts,
            all.as_deref_mut(),
            limit,
        )?;
        let Some(all) = all else { return Ok(None) };
        let mut out = Vec::with_capacity(size);
        out.push(msg);
        let mut at = counts[0];
        for r in 1..size {
            out.push(arrived(&header[2 * r..], all[at..at + counts[r]].to_vec()));
            at += counts[r];
        }
        Ok(Some(out))
    }
}
