//! Reductions on MPI: the [`NativeReduce`] calls (`MPI_Reduce`,
//! `MPI_Allreduce`, `MPI_Scan` with MPI's built-in ops on the caller's
//! buffer, in place; `MPI_Allgatherv`), and the message-level reductions
//! with any combine (gathered where they are combined: main, or main then
//! broadcast), which must not be built from point-to-point messages here
//! because those would mix with the user's on the data communicator.
//!
//! The `unsafe` calls follow the conventions of `handles.rs` (valid
//! handles, buffers that fit the counts, calls under the gate).

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use mpi::ffi;

use super::Mpi;
use super::calls::allgather_u64;
use super::datatype::builtin;
use super::handles::{Comm, Datatype, c_ints, call, int};
use super::plan::{pieces, rounds, starts};
use super::wire::or_scratch;
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::native::{NativeReduce, Reach};
use crate::op::Tag;
use crate::plain::{PlainBuf, PodType};
use crate::reduce::Reduce;
use crate::tree::Combine;

/// `MPI_IN_PLACE`, which rsmpi's C shim does not export: a macro whose
/// value is `(void *) 1` in Open MPI and `(void *) -1` in MPICH and its
/// derivatives (Intel MPI, MVAPICH), told apart by the library's version
/// string. `None` for another library: the reductions then copy their
/// input into a buffer of their own.
fn in_place() -> Option<*mut c_void> {
    static VALUE: OnceLock<Option<usize>> = OnceLock::new();
    let value = *VALUE.get_or_init(|| {
        let mut buf = vec![0u8; ffi::MPI_MAX_LIBRARY_VERSION_STRING as usize + 1];
        let mut len: c_int = 0;
        let got = call("MPI_Get_library_version", || {
            // SAFETY: `buf` has room for MPI_MAX_LIBRARY_VERSION_STRING
            // characters and the terminator, as the call requires.
            unsafe { ffi::MPI_Get_library_version(buf.as_mut_ptr().cast(), &mut len) }
        });
        let text =
            String::from_utf8_lossy(&buf[..usize::try_from(len).unwrap_or(0).min(buf.len())]);
        match got {
            Ok(()) if text.contains("Open MPI") => Some(1),
            Ok(())
                if ["MPICH", "Intel(R) MPI", "MVAPICH"]
                    .iter()
                    .any(|n| text.contains(n)) =>
            {
                Some(usize::MAX)
            }
            _ => None,
        }
    });
    value.map(|v| v as *mut c_void)
}

/// MPI's op for a built-in one.
fn op_of(op: Reduce) -> ffi::MPI_Op {
    use mpi::collective::SystemOperation as S;
    use mpi::traits::AsRaw;
    match op {
        Reduce::Sum => S::sum(),
        Reduce::Product => S::product(),
        Reduce::Min => S::min(),
        Reduce::Max => S::max(),
        Reduce::And => S::logical_and(),
        Reduce::Or => S::logical_or(),
        Reduce::BitAnd => S::bitwise_and(),
        Reduce::BitOr => S::bitwise_or(),
        Reduce::BitXor => S::bitwise_xor(),
    }
    .as_raw()
}

/// Whether MPI defines `op` on the type `ty` (floats have no logical or
/// bitwise ops): what MPI would reject with an error code, refused first
/// with the framework's message.
fn check_op(ty: PodType, op: Reduce) -> Result<()> {
    let float = ty.id == std::any::TypeId::of::<f64>() || ty.id == std::any::TypeId::of::<f32>();
    let logical = !matches!(
        op,
        Reduce::Sum | Reduce::Product | Reduce::Min | Reduce::Max
    );
    if float && logical {
        return Err(Error::ContractViolation(format!(
            "the reduction `{op}` is not defined for {}; pass a closure instead",
            ty.name
        )));
    }
    Ok(())
}

/// `MPI_Reduce` (to rank 0), `MPI_Allreduce` or `MPI_Scan` of `buf`
/// (elements of `ty`, the same count on every rank), in place, in calls of
/// at most `limit` elements (element-wise ops split freely).
fn reduce_in_place(
    comm: Comm,
    ty: Datatype<'_>,
    op: ffi::MPI_Op,
    buf: &mut [u8],
    reach: Reach,
    limit: usize,
) -> Result<()> {
    let size = ty.size();
    let name = match reach {
        Reach::Main => "MPI_Reduce",
        Reach::All => "MPI_Allreduce",
        Reach::Prefix => "MPI_Scan",
    };
    let place = in_place();
    for piece in pieces(buf.len() / size.max(1), limit) {
        let bytes = &mut buf[piece.start * size..piece.end * size];
        let count = int(piece.len(), name, "count")?;
        // Without MPI_IN_PLACE, the input is a copy of the piece.
        let copy: Option<Vec<u8>> = place.is_none().then(|| bytes.to_vec());
        let input: *const c_void = match (&copy, place) {
            (Some(c), _) => c.as_ptr().cast(),
            (None, Some(p)) => p,
            (None, None) => unreachable!("a copy is made without MPI_IN_PLACE"),
        };
        let out: *mut c_void = bytes.as_mut_ptr().cast();
        let root_only = reach == Reach::Main && comm.rank() != 0;
        call(name, || {
            // SAFETY: `bytes` holds exactly `count` elements of `ty`; `input`
            // is MPI_IN_PLACE (the library's own value, see `in_place`) or a
            // copy of the same `count` elements that lives through the call.
            // On a non-root rank of MPI_Reduce, `bytes` is the input (read
            // only) and the receive argument is ignored.
            unsafe {
                match reach {
                    Reach::Main if root_only => ffi::MPI_Reduce(
                        out.cast_const(),
                        std::ptr::null_mut(),
                        count,
                        ty.raw(),
                        op,
                        0,
                        comm.raw(),
                    ),
                    Reach::Main => ffi::MPI_Reduce(input, out, count, ty.raw(), op, 0, comm.raw()),
                    Reach::All => ffi::MPI_Allreduce(input, out, count, ty.raw(), op, comm.raw()),
                    Reach::Prefix => ffi::MPI_Scan(input, out, count, ty.raw(), op, comm.raw()),
                }
            }
        })?;
    }
    Ok(())
}

/// `MPI_Allgatherv`: every rank's `mine` (`counts[rank]` elements of `ty`)
/// into every rank's `all`, back to back in rank order, in rounds of at
/// most `limit` elements.
fn allgatherv(
    comm: Comm,
    ty: Datatype<'_>,
    mine: &[u8],
    counts: &[usize],
    all: &mut [u8],
    limit: usize,
) -> Result<()> {
    let (size, rank) = (ty.size(), comm.rank());
    if counts.len() != comm.size() || all.len() < counts.iter().sum::<usize>() * size {
        return Err(Error::ContractViolation(
            "allgather: the counts do not fit the communicator or the buffer".into(),
        ));
    }
    let own_start = starts(counts)[rank];
    for round in rounds(counts, limit) {
        let c = c_ints(&round.counts, "MPI_Allgatherv", "count")?;
        let d = c_ints(&round.displs, "MPI_Allgatherv", "displacement")?;
        let own = round.own(rank, own_start);
        let send = &mine[own.start * size..own.end * size];
        let window = all[round.base * size..].as_mut_ptr();
        call("MPI_Allgatherv", || {
            // SAFETY: `c` and `d` have one entry per rank of `comm`;
            // `send` holds `c[rank]` elements; `window` points into `all`
            // with every `d[r] + c[r]` elements of the round inside it (the
            // round lies within the counts' total, checked above).
            unsafe {
                ffi::MPI_Allgatherv(
                    send.as_ptr().cast(),
                    c[rank],
                    ty.raw(),
                    window.cast(),
                    c.as_ptr(),
                    d.as_ptr(),
                    ty.raw(),
                    comm.raw(),
                )
            }
        })?;
    }
    Ok(())
}

impl NativeReduce for Mpi {
    fn reduce_pod(
        &self,
        ty: PodType,
        op: Reduce,
        buf: &mut [u8],
        reach: Reach,
        _tag: Tag,
    ) -> Result<()> {
        let dt = builtin(ty).ok_or_else(|| {
            Error::ContractViolation(format!(
                "the built-in reductions apply to numbers, not {}",
                ty.name
            ))
        })?;
        check_op(ty, op)?;
        self.data_call(|comm| {
            if comm.size() == 1 {
                return Ok(());
            }
            reduce_in_place(comm, dt, op_of(op), buf, reach, self.limit(ty.size))
        })
    }

    fn allgather_pod(
        &self,
        ty: PodType,
        mine: &[u8],
        all: &mut dyn PlainBuf,
        _tag: Tag,
    ) -> Result<Vec<usize>> {
        self.data_call(|comm| {
            let words = allgather_u64(comm, &[ty.elements(mine.len()) as u64])?;
            let counts: Vec<usize> = words.into_iter().map(|n| n as usize).collect();
            let total = counts.iter().sum();
            let dt = super::datatype::PodDatatype::new(ty)?;
            let limit = self.limit(ty.size);
            if ty.size == 0 {
                all.fit(total)?;
                return Ok(counts);
            }
            let mut scratch = Vec::new();
            let (dst, err) = or_scratch(all.fit(total), ty.bytes(total), &mut scratch);
            allgatherv(comm, dt.datatype(), mine, &counts, dst, limit)?;
            err.map_or(Ok(counts), Err)
        })
    }
}

impl Mpi {
    /// Reduction to main with any combine: the values gathered on main and
    /// combined there in rank order.
    pub(super) fn reduce_at_main(
        &self,
        msg: Msg,
        combine: &Combine<'_>,
        tag: Tag,
    ) -> Result<Option<Msg>> {
        use crate::parallelizer::Parallelizer;
        let Some(all) = self.gather_msg(msg, tag)? else {
            return Ok(None);
        };
        let mut all = all.into_iter();
        let first = all.next().expect("one message per rank");
        all.try_fold(first, combine).map(Some)
    }

    /// All-reduce with any combine: reduced on main, then broadcast.
    pub(super) fn allreduce_at_main(
        &self,
        msg: Msg,
        combine: &Combine<'_>,
        tag: Tag,
    ) -> Result<Msg> {
        use crate::parallelizer::Parallelizer;
        let reduced = self.reduce_at_main(msg, combine, tag)?;
        self.broadcast_msg(reduced, tag)
    }

    /// Inclusive prefix with any combine: gathered on main, which computes
    /// every prefix and scatters them.
    pub(super) fn scan_at_main(&self, msg: Msg, combine: &Combine<'_>, tag: Tag) -> Result<Msg> {
        use crate::parallelizer::Parallelizer;
        let prefixes = match self.gather_msg(msg, tag)? {
            None => None,
            Some(all) => {
                let mut out: Vec<Msg> = Vec::with_capacity(all.len());
                for m in all {
                    let next = match out.last() {
                        Some(prev) => combine(prev.duplicate()?, m)?,
                        None => m,
                    };
                    out.push(next);
                }
                Some(out)
            }
        };
        self.scatter_msg(prefixes, tag)
    }
}
