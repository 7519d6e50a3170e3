//! Plain data in native MPI datatypes: the [`NativePod`] collectives of the
//! [`Mpi`] backend move `bytemuck::Pod` slices with no serialization, as
//! `MPI_DOUBLE`, `MPI_INT32_T`, ... for the primitive numbers and as a
//! contiguous block of bytes for any other plain type.

use std::any::TypeId;

use std::ffi::c_int;

use super::calls;
use super::handles::{Comm, Contiguous, Datatype, byte_type, u64_type};
use super::held::Held;
use super::messages::{uncut, unexpected};
use super::wire::{or_scratch, with_inbox};
use super::{
    Mpi, TAG_BODY, TAG_HEADER, TAG_POD, TAG_POD8, TAG_SERDE, bcast_words, contract_error,
    described, missing, protocol_error, verify,
};
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::native::check_parts;
use crate::op::{Op, Tag};
use crate::parallelizer::{NativePod, Parallelizer, PlainBuf, PodType, check_rank};
use crate::split::chunk_sizes;

/// The MPI datatype of a plain element type: built in for the primitive
/// numbers, else a committed contiguous block of its bytes (freed on drop).
#[derive(Debug)]
pub(super) enum PodDatatype {
    Native(Datatype<'static>),
    Derived(Contiguous),
}

/// The built-in MPI datatype of a primitive number, if `ty` is one.
pub(super) fn builtin(ty: PodType) -> Option<Datatype<'static>> {
    macro_rules! find {
        ($($t:ty),*) => {$(
            if ty.id == TypeId::of::<$t>() {
                return Some(Datatype::of::<$t>());
            }
        )*};
    }
    find!(f64, f32, i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);
    None
}

impl PodDatatype {
    pub(super) fn new(ty: PodType) -> Result<PodDatatype> {
        Ok(match builtin(ty) {
            Some(dt) => PodDatatype::Native(dt),
            None => PodDatatype::Derived(Contiguous::bytes(ty.size.max(1))?),
        })
    }

    pub(super) fn datatype(&self) -> Datatype<'_> {
        match self {
            PodDatatype::Native(dt) => *dt,
            PodDatatype::Derived(dt) => dt.datatype(),
        }
    }
}

impl NativePod for Mpi {
    fn broadcast_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, _tag: Tag) -> Result<()> {
        self.data_call(|comm| {
            let on_main = comm.rank() == 0;
            // Main's length, which a worker fits its buffer to (or, if its
            // buffer is fixed and another length, a scratch buffer: it takes
            // its part all the same, then returns the error), and its
            // element size: a worker whose elements are of another size
            // (another type) takes main's bytes into scratch space too.
            let mut words = [0u64; 2];
            if on_main {
                words = [ty.elements(buf.bytes().len()) as u64, ty.size as u64];
            }
            bcast_words(comm, &mut words, 0)?;
            let (n, size) = (words[0] as usize, words[1] as usize);
            if size != ty.size {
                return Err(self.other_elements(comm, ty, n, size));
            }
            let dt = PodDatatype::new(ty)?;
            let limit = self.limit(ty.size);
            let fitted = if on_main { Ok(buf.bytes()) } else { buf.fit(n) };
            if ty.size == 0 {
                return fitted.map(drop);
            }
            let mut scratch = Vec::new();
            let (bytes, err) = or_scratch(fitted, ty.bytes(n), &mut scratch);
            calls::bcast(comm, dt.datatype(), bytes, 0, limit)?;
            err.map_or(Ok(()), Err)
        })
    }

    fn scatter_pod(
        &self,
        ty: PodType,
        send: Option<&[u8]>,
        recv: Option<&mut dyn PlainBuf>,
        _tag: Tag,
    ) -> Result<()> {
        self.plain_call(|comm| {
            if comm.rank() != 0 {
                let recv = recv
                    .ok_or_else(|| contract_error("scatter: a worker passed no buffer".into()))?;
                return self.recv_part(comm, ty, recv, 0)?.map(drop);
            }
            // Main sends each worker its chunk, all at once (`part.rs`);
            // each learns its length from the message itself.
            let send = send.ok_or_else(|| missing(Op::Scatter))?;
            let counts = chunk_sizes(ty.elements(send.len()), comm.size());
            let mut at = ty.bytes(counts[0]);
            let mut parts = Vec::with_capacity(counts.len() - 1);
            for (r, &count) in counts.iter().enumerate().skip(1) {
                parts.push((r, &send[at..at + ty.bytes(count)]));
                at += ty.bytes(count);
            }
            // Main copies its own chunk while the workers copy theirs out of
            // main's memory (Open MPI's shared-memory transport has the
            // receiver copy), not after.
            self.send_parts(comm, &parts, || {
                if let Some(recv) = recv {
                    recv.fit(counts[0])?
                        .copy_from_slice(&send[..ty.bytes(counts[0])]);
                }
                Ok(())
            })
        })
    }

    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        recv: Option<&mut dyn PlainBuf>,
        own: bool,
        _tag: Tag,
    ) -> Result<Vec<usize>> {
        self.plain_call(|comm| {
            if comm.rank() != 0 {
                self.send_part(comm, send, 0)?;
                return Ok(Vec::new());
            }
            // Main learns every part's length from its message (no exchange of
            // counts first), then receives each in place.
            let recv =
                recv.ok_or_else(|| contract_error("gather: main passed no buffer".into()))?;
            self.gather_parts(comm, ty, send, recv, own)
        })
    }

    fn gather_pod_parts(
        &self,
        ty: PodType,
        send: &[u8],
        parts: Option<&mut [&mut dyn PlainBuf]>,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        // A worker's end (and main's without buffers) is `gather_pod`'s.
        let Some(parts) = parts.filter(|_| self.on_main()) else {
            return self.gather_pod(ty, send, None, false, tag);
        };
        self.plain_call(|comm| {
            let workers = comm.size() - 1;
            // Every part is received (a missing buffer's into scratch
            // space), so that no worker waits, before an error returns.
            let mut first = check_parts(parts.len(), workers);
            let mut counts = vec![ty.elements(send.len())];
            for from in 1..comm.size() {
                let got = match parts.get_mut(from - 1) {
                    Some(buf) => self.recv_part(comm, ty, &mut **buf, from),
                    None => self.recv_part(comm, PodType::of::<u8>(), &mut Vec::<u8>::new(), from),
                };
                match got? {
                    Ok(count) => counts.push(count),
                    Err(misfit) => first = first.and(Err(misfit)),
                }
            }
            first.map(|()| counts)
        })
    }

    fn send_pod(&self, ty: PodType, buf: &[u8], to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let tag = if ty.size.is_multiple_of(8) && ty.size > 0 {
            TAG_POD8
        } else {
            TAG_POD
        };
        self.data_call(|comm| self.send_tagged(comm, tag, buf, to))
    }

    /// A map's result whose body main left with its sender (`held.rs`):
    /// received straight into `buf`.
    fn take_lent(
        &self,
        msg: Msg,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        from: usize,
        _ack: Tag,
    ) -> Result<Option<Msg>> {
        let held = match Held::from_msg(msg) {
            Ok(held) => held,
            Err(msg) => return Ok(Some(msg)),
        };
        if held.from() != from {
            return Err(protocol_error(format!(
                "a message from rank {} was taken as rank {from}'s",
                held.from()
            )));
        }
        self.data_call(|_| held.land(ty, buf)).map(|()| None)
    }

    fn recv_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, from: usize, _tag: Tag) -> Result<()> {
        check_rank(self, from)?;
        self.receive_call(|comm, deadline| {
            if deadline.is_some() {
                return self.recv_pod_probed(comm, ty, buf, from, deadline);
            }
            if let Some(bytes) = buf.fixed() {
                return match self.recv_posted(comm, bytes, from)? {
                    Posted::Whole => Ok(()),
                    Posted::Longer => Err(Error::Overflow {
                        op: Op::Receive,
                        rank: self.id(),
                        from,
                        actual: ty.elements(bytes.len()),
                    }),
                    Posted::Other { len, serde } => Err(not_plain(ty, from, len, serde)
                        .unwrap_or_else(|| match buf.fit(ty.elements(len)) {
                            Err(e) => e,
                            Ok(_) => protocol_error(format!(
                                "a message of {len} bytes from rank {from} fits a buffer it did \
                                 not fill"
                            )),
                        })),
                };
            }
            // A buffer that grows to the message: posted on the inbox.
            with_inbox(|inbox| {
                let took = calls::recv_any_tag(comm, inbox, from)?;
                let len = took.len.ok_or_else(|| uncut(from))?;
                match took.tag {
                    TAG_POD | TAG_POD8 | TAG_SERDE => {
                        let serde = took.tag == TAG_SERDE;
                        let fitted = match not_plain(ty, from, len, serde) {
                            Some(e) => Err(e),
                            None => buf.fit(ty.elements(len)),
                        };
                        fitted?.copy_from_slice(&inbox[..len]);
                        Ok(())
                    }
                    TAG_HEADER if len == 16 => {
                        let header: [u64; 2] = bytemuck::pod_read_unaligned(&inbox[..16]);
                        let (pod, len) = described(&header);
                        self.recv_pod_body(comm, ty, buf, from, len, !pod, TAG_BODY)
                    }
                    verify::TAG_FINISHED => {
                        Err(self.note_instead(comm, from, inbox.first().copied()))
                    }
                    other => Err(unexpected(other, from)),
                }
            })
        })
    }
}

impl Mpi {
    /// A worker's end of a broadcast of `n` elements of `size` bytes whose
    /// own elements (`ty`) are of another size: main's bytes are taken
    /// into scratch space, in the pieces main sends them in, so that the
    /// ranks stay in step; the error names both.
    fn other_elements(&self, comm: Comm, ty: PodType, n: usize, size: usize) -> Error {
        let taken = Contiguous::bytes(size.max(1)).and_then(|dt| {
            let mut scratch = vec![0u8; n * size];
            calls::bcast(comm, dt.datatype(), &mut scratch, 0, self.limit(size))
        });
        taken.err().unwrap_or_else(|| {
            Error::Codec(format!(
                "type mismatch: expected plain data {} ({}-byte elements) but rank 0 broadcast \
                 {size}-byte elements",
                ty.vec_name, ty.size
            ))
        })
    }

    /// [`recv_pod`](NativePod::recv_pod) with a deadline: the message is
    /// probed for (polled) first.
    fn recv_pod_probed(
        &self,
        comm: Comm,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        from: usize,
        deadline: Option<std::time::Instant>,
    ) -> Result<()> {
        let Some((tag, count)) = calls::probe_any(comm, from, deadline)? else {
            return Err(self.gave_up(from));
        };
        match tag {
            TAG_POD | TAG_POD8 | TAG_SERDE => {
                self.recv_pod_body(comm, ty, buf, from, count, tag == TAG_SERDE, tag)
            }
            TAG_HEADER => {
                let mut header = [0u64; 2];
                let words = bytemuck::cast_slice_mut(&mut header);
                calls::recv(comm, u64_type(), words, from, TAG_HEADER, 2)?;
                let (pod, len) = described(&header);
                self.recv_pod_body(comm, ty, buf, from, len, !pod, TAG_BODY)
            }
            verify::TAG_FINISHED => Err(self.note_instead(comm, from, None)),
            other => Err(unexpected(other, from)),
        }
    }

    /// Receives a message of `len` bytes from `from` (a whole one of tag
    /// `tag`, or the body after a header, `TAG_BODY`) into `buf`, fitted to
    /// it. A message that is not plain data of `ty`, or does not fit, is
    /// taken all the same (into scratch space, so that the next receive
    /// does not find it), then the error is returned.
    #[allow(clippy::too_many_arguments)]
    fn recv_pod_body(
        &self,
        comm: Comm,
        ty: PodType,
        buf: &mut dyn PlainBuf,
        from: usize,
        len: usize,
        serde: bool,
        tag: c_int,
    ) -> Result<()> {
        let fitted = match not_plain(ty, from, len, serde) {
            Some(e) => Err(e),
            None => buf.fit(ty.elements(len)),
        };
        let mut scratch = Vec::new();
        let (out, err) = or_scratch(fitted, len, &mut scratch);
        if tag == TAG_BODY {
            calls::recv(comm, byte_type(), out, from, tag, self.limit(1))?;
        } else {
            calls::recv_one(comm, out, from, tag)?;
        }
        err.map_or(Ok(()), Err)
    }
}

/// The error of a message of `len` bytes from `from` that is not plain
/// data of `ty`: a serde value, or not a whole number of elements.
fn not_plain(ty: PodType, from: usize, len: usize, serde: bool) -> Option<Error> {
    (serde || !ty.whole(len)).then(|| {
        Error::Codec(format!(
            "expected plain data {} but rank {from} sent {}",
            ty.vec_name,
            if serde {
                "a serde value".to_string()
            } else {
                format!("{len} bytes")
            }
        ))
    })
}

/// What a receive posted on a buffer of fixed length took.
enum Posted {
    /// A message of plain data that filled the buffer exactly.
    Whole,
    /// A message of plain data longer than the buffer (cut by MPI).
    Longer,
    /// Another message, taken whole elsewhere: `len` bytes, a serde value
    /// or plain data.
    Other { len: usize, serde: bool },
}

impl Mpi {
    /// A receive of plain data from `from` into `buf`, whose length is
    /// fixed, posted straight on it: no probe, so a message that arrives
    /// after the receive is posted (the common case: the receiver waits) is
    /// copied once, as by a raw `MPI_Recv`. Messages of another length or
    /// kind are taken all the same (the next receive does not find them).
    fn recv_posted(&self, comm: Comm, buf: &mut [u8], from: usize) -> Result<Posted> {
        // A header (two words) fits whatever the buffer's length.
        let mut small = [0u8; 16];
        let short = buf.len() < small.len();
        let took = if short {
            calls::recv_any_tag(comm, &mut small, from)?
        } else {
            calls::recv_any_tag(comm, buf, from)?
        };
        let len = match (took.tag, took.len) {
            (TAG_POD | TAG_POD8, Some(len)) => len,
            (TAG_POD | TAG_POD8, None) => return Ok(Posted::Longer),
            (TAG_SERDE, len) => {
                return Ok(Posted::Other {
                    len: len.unwrap_or(buf.len()),
                    serde: true,
                });
            }
            (TAG_HEADER, Some(16)) => {
                let got = if short { &small[..] } else { &buf[..16] };
                let header: [u64; 2] = bytemuck::pod_read_unaligned(got);
                let (pod, len) = described(&header);
                // The body into the buffer if it fits, else into scratch
                // (taken all the same).
                let whole = pod && len == buf.len();
                let mut scratch = Vec::new();
                let into = if whole {
                    buf
                } else {
                    scratch.resize(len, 0u8);
                    &mut scratch[..]
                };
                calls::recv(comm, byte_type(), into, from, TAG_BODY, self.limit(1))?;
                return Ok(if whole {
                    Posted::Whole
                } else {
                    Posted::Other { len, serde: !pod }
                });
            }
            (other, _) => return Err(unexpected(other, from)),
        };
        if len != buf.len() {
            return Ok(Posted::Other { len, serde: false });
        }
        if short {
            buf.copy_from_slice(&small[..len]);
        }
        Ok(Posted::Whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::mpi::world::world;

    #[test]
    fn primitives_are_native_and_other_plain_types_a_block_of_their_size() {
        world().expect("MPI singleton");
        let f64_type = PodDatatype::new(PodType::of::<f64>()).unwrap();
        assert!(matches!(f64_type, PodDatatype::Native(_)));
        assert_eq!(f64_type.datatype().size(), 8);
        let pair = PodDatatype::new(PodType::of::<[u16; 3]>()).unwrap();
        assert!(matches!(pair, PodDatatype::Derived(_)));
        assert_eq!(pair.datatype().size(), 6);
    }
}
