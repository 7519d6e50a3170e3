//! The parallelizer's messages and collectives on one communicator (the
//! region's or a group's, which [`Mpi::data_call`] picks): how a message
//! of any size travels point to point, and the broadcast, scatter and
//! gather of messages, over the calls of `calls.rs`.

use std::ffi::c_int;
use std::time::{Duration, Instant};

use super::handles::{Comm, byte_type, u64_type};
use super::held::Held;
use super::posted::Body;
use super::wait::Backoff;
use super::wire::{INLINE, headed, in_words, with_inbox};
use super::{
    Mpi, TAG_BODY, TAG_HEADER, TAG_POD, TAG_POD8, TAG_SERDE, arrived, bcast_framed, bcast_words,
    calls, contract_error, describe, described, fate, lengths, missing, protocol_error,
    receive_timeout, verify, wire,
};
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg};
use crate::op::Op;
use crate::parallelizer::Parallelizer;

impl Mpi {
    /// Sends `msg`, whose wire bytes are `bytes`, to `to`.
    pub(super) fn send_bytes(&self, comm: Comm, msg: &Msg, bytes: &[u8], to: usize) -> Result<()> {
        self.send_tagged(comm, wire_tag(msg, bytes.len()), bytes, to)
    }

    /// Sends `bytes` to `to` as a message of `tag` ([`TAG_POD`],
    /// [`TAG_POD8`] or [`TAG_SERDE`]): whole up to [`INLINE`] bytes, else a
    /// header and then the body, in pieces of at most `max_message_bytes`.
    pub(super) fn send_tagged(
        &self,
        comm: Comm,
        tag: c_int,
        bytes: &[u8],
        to: usize,
    ) -> Result<()> {
        let limit = self.limit(1);
        if bytes.len() <= INLINE.min(limit) {
            return calls::send_one(comm, bytes, to, tag);
        }
        send_header(comm, tag, bytes.len(), to)?;
        calls::send(comm, byte_type(), bytes, to, TAG_BODY, limit)
    }

    /// Posts `msg` to `to` (`posted.rs`) in the messages
    /// [`send_bytes`](Mpi::send_bytes) would send: whole up to [`INLINE`]
    /// bytes, else a header and then the body in pieces of at most
    /// `max_message_bytes`, all but the 16-byte header as `MPI_Isend`s that
    /// complete while this rank goes on. No message that may exceed MPI's
    /// eager limit (which counts MPI's own header too) is a blocking send:
    /// main queueing a chunk for a worker that sends it a result would wait
    /// for each other.
    pub(super) fn post_on(&self, comm: Comm, msg: Msg, to: usize) -> Result<()> {
        let body = Body::new(msg)?;
        let (len, limit) = (body.bytes().len(), self.limit(1));
        let mut tag = wire_tag(body.msg(), len);
        if len > INLINE.min(limit) {
            send_header(comm, tag, len, to)?;
            tag = TAG_BODY;
        }
        self.posted.post(comm, body, to, tag, limit)
    }

    /// When a receive on this rank gives up: outside a region (SPMD) the
    /// timeout bounds each receive. Inside one the region's deadline bounds
    /// the wait: under ULFM the watchdog's revoke releases it (`fate.rs`;
    /// receives there are polled, and see the revoke: `calls/point.rs`);
    /// without, it is polled until the deadline.
    pub(super) fn recv_deadline(&self, cur: Option<&fate::Current>) -> Option<Instant> {
        match cur {
            None => self.core.config().timeout.map(|t| Instant::now() + t),
            Some(_) if self.world.faults.is_ulfm() => None,
            Some(cur) => cur.deadline,
        }
    }

    /// The next message from `from`. Without a deadline, one `MPI_Recv` of
    /// any tag posted on this thread's inbox ([`with_inbox`]) takes a whole
    /// message or the header of a longer one; with one, a polled probe
    /// finds it first.
    pub(super) fn recv_bytes(
        &self,
        comm: Comm,
        from: usize,
        deadline: Option<Instant>,
    ) -> Result<Msg> {
        if deadline.is_some() {
            let Some((tag, count)) = calls::probe_any(comm, from, deadline)? else {
                return Err(self.gave_up(from));
            };
            return self.recv_probed(comm, from, tag, count, false);
        }
        with_inbox(|inbox| {
            let took = calls::recv_any_tag(comm, inbox, from)?;
            let len = took.len.ok_or_else(|| uncut(from))?;
            let got = &inbox[..len];
            match took.tag {
                TAG_POD => Ok(Msg::from_bytes(Encoding::Pod, got.to_vec())),
                TAG_POD8 if len.is_multiple_of(8) => {
                    let mut words = vec![0u64; len / 8];
                    bytemuck::cast_slice_mut(&mut words).copy_from_slice(got);
                    Ok(Msg::from_words(words, len))
                }
                TAG_SERDE => Ok(Msg::from_bytes(Encoding::Serde, got.to_vec())),
                TAG_HEADER if len == 16 => {
                    self.recv_body(comm, from, &bytemuck::pod_read_unaligned::<[u64; 2]>(got))
                }
                verify::TAG_FINISHED => Err(self.note_instead(comm, from, got.first().copied())),
                other => Err(unexpected(other, from)),
            }
        })
    }

    /// The first message from any rank of `from`, or `None` at `until`.
    /// Polls each rank's probe in turn (a probe of one source never returns
    /// a message of another, which could not be left for later), spinning,
    /// yielding and then sleeping briefly between rounds (`wait.rs`) so that
    /// the rank's own work keeps its core. (Only a map's main waits so, for
    /// results: a plain one's body is held for the map to land.)
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
                    // A map's plain result lands in place (`held.rs`) where
                    // the map takes it with the native calls' `take_lent`
                    // (which option `verify` turns off).
                    let hold = self.native_pod().is_some();
                    return self
                        .recv_probed(comm, r, tag, count, hold)
                        .map(|m| Some((r, m)));
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
    /// rank `from` on `comm`; if `hold`, the body of plain data after a
    /// header stays with the sender ([`Held`]).
    fn recv_probed(
        &self,
        comm: Comm,
        from: usize,
        tag: c_int,
        count: usize,
        hold: bool,
    ) -> Result<Msg> {
        let whole = usize::MAX;
        match tag {
            TAG_POD => Ok(Msg::from_bytes(
                Encoding::Pod,
                calls::recv_exact::<u8>(comm, from, tag, count, whole)?,
            )),
            TAG_POD8 if count.is_multiple_of(8) => {
                let words = calls::recv_exact::<u64>(comm, from, tag, count, whole)?;
                Ok(Msg::from_words(words, count))
            }
            TAG_SERDE => Ok(Msg::from_bytes(
                Encoding::Serde,
                calls::recv_exact::<u8>(comm, from, tag, count, whole)?,
            )),
            TAG_HEADER => {
                let mut header = [0u64; 2];
                let words = bytemuck::cast_slice_mut(&mut header);
                calls::recv(comm, u64_type(), words, from, TAG_HEADER, 2)?;
                match described(&header) {
                    (true, len) if hold => Ok(Held::msg(comm, from, len, self.limit(1))),
                    _ => self.recv_body(comm, from, &header),
                }
            }
            verify::TAG_FINISHED => Err(self.note_instead(comm, from, None)),
            other => Err(unexpected(other, from)),
        }
    }

    /// The body that follows the header `desc` from `from`, into a vector
    /// of its own (of 8-byte words for plain data of such elements).
    fn recv_body(&self, comm: Comm, from: usize, desc: &[u64]) -> Result<Msg> {
        let (len, limit) = (described(desc).1, self.limit(1));
        if in_words(desc) {
            let words = calls::recv_exact::<u64>(comm, from, TAG_BODY, len, limit)?;
            return Ok(Msg::from_words(words, len));
        }
        let bytes = calls::recv_exact::<u8>(comm, from, TAG_BODY, len, limit)?;
        Ok(arrived(desc, bytes))
    }

    /// The error of a receive from `from` that found the note of a finished
    /// rank (option `verify`) instead of a message: `note` if it was taken,
    /// else it is received here.
    pub(super) fn note_instead(&self, comm: Comm, from: usize, note: Option<u8>) -> Error {
        match fate::current() {
            Some(cur) => self.finished_peer(&cur, comm, from, note),
            None => protocol_error(format!(
                "a note of the end of a region from rank {from} outside a region"
            )),
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

/// The error of a point-to-point message with a tag no receive takes.
pub(super) fn unexpected(tag: c_int, from: usize) -> Error {
    protocol_error(format!(
        "unexpected point-to-point message (tag {tag}) from rank {from}: is another library \
         using the parallelizer's communicator?"
    ))
}

/// The error of a message longer than [`INLINE`] bytes that came whole
/// (such messages come after a header): the sender does not speak this
/// protocol.
pub(super) fn uncut(from: usize) -> Error {
    protocol_error(format!(
        "rank {from} sent a message of more than {INLINE} bytes without its header"
    ))
}

/// The MPI tag of `msg` on the wire, `len` bytes: [`TAG_POD8`] for plain
/// data of 8-byte-aligned elements (received into words a `Vec<f64>` can
/// take over), [`TAG_POD`] for other plain data, else [`TAG_SERDE`].
fn wire_tag(msg: &Msg, len: usize) -> c_int {
    match msg.encoding() {
        Encoding::Pod if msg.pod_align() == 8 && len.is_multiple_of(8) => TAG_POD8,
        Encoding::Pod => TAG_POD,
        _ => TAG_SERDE,
    }
}

/// Sends the header of a message of `tag` whose body of `len` bytes follows
/// ([`TAG_BODY`]).
fn send_header(comm: Comm, tag: c_int, len: usize, to: usize) -> Result<()> {
    let header = headed(tag, len);
    calls::send(
        comm,
        u64_type(),
        bytemuck::cast_slice(&header),
        to,
        TAG_HEADER,
        2,
    )
}
