//! Plain data in native MPI datatypes: the [`NativePod`] collectives of the
//! [`Mpi`] backend move `bytemuck::Pod` slices with no serialization, as
//! `MPI_DOUBLE`, `MPI_INT32_T`, ... for the primitive numbers and as a
//! contiguous block of bytes for any other plain type.

use std::any::TypeId;

use mpi::datatype::{Equivalence, SystemDatatype};

use std::time::Instant;

use super::calls;
use super::handles::{Contiguous, Datatype, byte_type, u64_type};
use super::{
    Mpi, TAG_BODY, TAG_HEADER, TAG_POD, TAG_POD8, TAG_SERDE, bcast_words, contract_error, describe,
    missing, protocol_error, receive_timeout,
};
use crate::error::{Error, Result};
use crate::msg::Encoding;
use crate::op::{Op, Tag};
use crate::parallelizer::{NativePod, PlainBuf, PodType, check_rank};
use crate::split::chunk_sizes;

/// The MPI datatype of a plain element type: built in for the primitive
/// numbers, else a committed contiguous block of its bytes (freed on drop).
#[derive(Debug)]
pub(super) enum PodDatatype {
    Native(Datatype<'static>),
    Derived(Contiguous),
}

/// The entry of `T` in the table of built-in datatypes.
fn native<T: Equivalence<Out = SystemDatatype> + 'static>() -> (TypeId, Datatype<'static>) {
    (TypeId::of::<T>(), Datatype::of::<T>())
}

/// The built-in MPI datatype of a primitive number, if `ty` is one.
pub(super) fn builtin(ty: PodType) -> Option<Datatype<'static>> {
    let table = [
        native::<f64>(),
        native::<f32>(),
        native::<i8>(),
        native::<i16>(),
        native::<i32>(),
        native::<i64>(),
        native::<u8>(),
        native::<u16>(),
        native::<u32>(),
        native::<u64>(),
        native::<usize>(),
        native::<isize>(),
    ];
    table.iter().find(|(id, _)| *id == ty.id).map(|&(_, dt)| dt)
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
        let comm = self.world.data;
        let on_main = comm.rank() == 0;
        // Main's length, which a worker fits its buffer to (or, if its
        // buffer is fixed and another length, a scratch buffer: it takes
        // its part all the same, then returns the error).
        let mut len = [if on_main {
            ty.elements(buf.bytes().len()) as u64
        } else {
            0
        }];
        bcast_words(comm, &mut len, 0)?;
        let n = len[0] as usize;
        let dt = PodDatatype::new(ty)?;
        let limit = self.limit(ty.size);
        let fitted = if on_main { Ok(buf.bytes()) } else { buf.fit(n) };
        if ty.size == 0 {
            return fitted.map(drop);
        }
        match fitted {
            Ok(bytes) => calls::bcast(comm, dt.datatype(), bytes, 0, limit),
            Err(e) => {
                let mut scratch = vec![0u8; ty.bytes(n)];
                calls::bcast(comm, dt.datatype(), &mut scratch, 0, limit)?;
                Err(e)
            }
        }
    }

    fn scatter_pod(
        &self,
        ty: PodType,
        send: Option<&[u8]>,
        recv: Option<&mut dyn PlainBuf>,
        _tag: Tag,
    ) -> Result<()> {
        let comm = self.world.data;
        let rank = comm.rank();
        // The total, and whether main keeps its chunk where it is (no
        // receive buffer): then it sends itself nothing, and the others'
        // chunks start after it. Every rank splits the call alike.
        let mut head = [0u64; 2];
        if rank == 0 {
            let send = send.ok_or_else(|| missing(Op::Scatter))?;
            head = [ty.elements(send.len()) as u64, u64::from(recv.is_none())];
        }
        bcast_words(comm, &mut head, 0)?;
        let mut counts = chunk_sizes(head[0] as usize, comm.size());
        let mine = counts[rank];
        let mut send = send.filter(|_| rank == 0);
        if head[1] == 1 {
            send = send.map(|s| &s[ty.bytes(counts[0])..]);
            counts[0] = 0;
        }
        let dt = PodDatatype::new(ty)?;
        let limit = self.limit(ty.size);
        let mut own = Vec::new();
        let (recv, err) = match recv {
            None if rank == 0 => (&mut own[..], None),
            None => return Err(contract_error("scatter: a worker passed no buffer".into())),
            Some(buf) => match buf.fit(mine) {
                Ok(bytes) => (bytes, None),
                Err(e) => {
                    own = vec![0u8; ty.bytes(mine)];
                    (&mut own[..], Some(e))
                }
            },
        };
        if ty.size > 0 {
            calls::scatterv(comm, dt.datatype(), send, &counts, recv, limit)?;
        }
        err.map_or(Ok(()), Err)
    }

    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        recv: Option<&mut dyn PlainBuf>,
        own: bool,
        _tag: Tag,
    ) -> Result<Vec<usize>> {
        let comm = self.world.data;
        let rank = comm.rank();
        // Every rank's count on every rank: MPI_Gatherv needs them on main
        // only, but every rank splits a large call into the same rounds.
        let words = calls::allgather_u64(comm, &[ty.elements(send.len()) as u64])?;
        let counts: Vec<usize> = words.into_iter().map(|n| n as usize).collect();
        let dt = PodDatatype::new(ty)?;
        let limit = self.limit(ty.size);
        // Without `own`, main leaves its part out by sending itself nothing.
        let mut effective = counts.clone();
        if !own {
            effective[0] = 0;
        }
        let send = if rank == 0 && !own { &[][..] } else { send };
        if rank != 0 {
            if ty.size > 0 {
                calls::gatherv(comm, dt.datatype(), send, &effective, None, limit)?;
            }
            return Ok(Vec::new());
        }
        let total: usize = effective.iter().sum();
        let recv = recv.ok_or_else(|| contract_error("gather: main passed no buffer".into()))?;
        let mut scratch: Vec<u8>;
        let (out, err) = match recv.fit(total) {
            Ok(bytes) => (bytes, None),
            Err(e) => {
                scratch = vec![0u8; ty.bytes(total)];
                (&mut scratch[..], Some(e))
            }
        };
        if ty.size > 0 {
            calls::gatherv(comm, dt.datatype(), send, &effective, Some(out), limit)?;
        }
        err.map_or(Ok(counts), Err)
    }

    fn send_pod(&self, ty: PodType, buf: &[u8], to: usize, _tag: Tag) -> Result<()> {
        check_rank(self, to)?;
        let comm = self.world.data;
        if buf.len() <= self.limit(1) {
            let tag = if ty.size.is_multiple_of(8) && ty.size > 0 {
                TAG_POD8
            } else {
                TAG_POD
            };
            return calls::send_one(comm, buf, to, tag);
        }
        let header = describe(Encoding::Pod, buf.len());
        calls::send(
            comm,
            u64_type(),
            bytemuck::cast_slice(&header),
            to,
            TAG_HEADER,
            2,
        )?;
        calls::send(comm, byte_type(), buf, to, TAG_BODY, self.limit(1))
    }

    fn recv_pod(&self, ty: PodType, buf: &mut dyn PlainBuf, from: usize, _tag: Tag) -> Result<()> {
        check_rank(self, from)?;
        let comm = self.world.data;
        let timeout = self.core.config().timeout;
        let deadline = timeout.map(|t| Instant::now() + t);
        let Some((tag, count)) = calls::probe_any(comm, from, deadline)? else {
            return Err(receive_timeout(from, timeout.unwrap_or_default()));
        };
        let (len, body_tag, serde) = match tag {
            TAG_POD | TAG_POD8 | TAG_SERDE => (count, tag, tag == TAG_SERDE),
            TAG_HEADER => {
                let mut header = [0u64; 2];
                let words = bytemuck::cast_slice_mut(&mut header);
                calls::recv(comm, u64_type(), words, from, TAG_HEADER, 2)?;
                (header[1] as usize, TAG_BODY, header[0] != 1)
            }
            other => {
                return Err(protocol_error(format!(
                    "unexpected point-to-point message (tag {other}) from rank {from}"
                )));
            }
        };
        let limit = self.limit(1);
        let mut scratch: Vec<u8>;
        let whole = ty.size == 0 || len % ty.size == 0;
        let fitted = if serde || !whole {
            Err(Error::Codec(format!(
                "expected plain data {} but rank {from} sent {}",
                ty.vec_name,
                if serde {
                    "a serde value".to_string()
                } else {
                    format!("{len} bytes")
                }
            )))
        } else {
            buf.fit(ty.elements(len))
        };
        let (out, err) = match fitted {
            Ok(bytes) => (bytes, None),
            Err(e) => {
                // The message is taken all the same, so the next receive
                // does not find it.
                scratch = vec![0u8; len];
                (&mut scratch[..], Some(e))
            }
        };
        if body_tag == TAG_BODY {
            calls::recv(comm, byte_type(), out, from, body_tag, limit)?;
        } else {
            calls::recv_one(comm, out, from, body_tag)?;
        }
        err.map_or(Ok(()), Err)
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
