//! Plain data in native MPI datatypes: the [`NativePod`] collectives of the
//! [`Mpi`] backend move `bytemuck::Pod` slices with no serialization, as
//! `MPI_DOUBLE`, `MPI_INT32_T`, ... for the primitive numbers and as a
//! contiguous block of bytes for any other plain type.

use std::any::TypeId;

use mpi::datatype::{Equivalence, SystemDatatype};

use super::Mpi;
use super::calls;
use super::handles::{Contiguous, Datatype};
use crate::error::Result;
use crate::parallelizer::{NativePod, PodType};

/// The MPI datatype of a plain element type: built in for the primitive
/// numbers, else a committed contiguous block of its bytes (freed on drop).
#[derive(Debug)]
enum PodDatatype {
    Native(Datatype<'static>),
    Derived(Contiguous),
}

/// The entry of `T` in the table of built-in datatypes.
fn native<T: Equivalence<Out = SystemDatatype> + 'static>() -> (TypeId, Datatype<'static>) {
    (TypeId::of::<T>(), Datatype::of::<T>())
}

impl PodDatatype {
    fn new(ty: PodType) -> Result<PodDatatype> {
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
        ];
        Ok(match table.iter().find(|(id, _)| *id == ty.id) {
            Some(&(_, dt)) => PodDatatype::Native(dt),
            None => PodDatatype::Derived(Contiguous::bytes(ty.size)?),
        })
    }

    fn datatype(&self) -> Datatype<'_> {
        match self {
            PodDatatype::Native(dt) => *dt,
            PodDatatype::Derived(dt) => dt.datatype(),
        }
    }
}

impl NativePod for Mpi {
    fn broadcast_pod(&self, ty: PodType, buf: &mut [u8]) -> Result<()> {
        if ty.size == 0 || self.comm.size() == 1 {
            return Ok(());
        }
        let dt = PodDatatype::new(ty)?;
        calls::bcast(self.comm, dt.datatype(), buf, 0, self.limit(ty.size))
    }

    fn all_counts(&self, mine: usize) -> Result<Vec<usize>> {
        let all = calls::allgather_u64(self.comm, &[mine as u64])?;
        Ok(all.into_iter().map(|n| n as usize).collect())
    }

    fn scatter_pod(
        &self,
        ty: PodType,
        send: Option<&[u8]>,
        counts: &[usize],
        recv: &mut [u8],
    ) -> Result<()> {
        if ty.size == 0 {
            return Ok(());
        }
        let dt = PodDatatype::new(ty)?;
        let limit = self.limit(ty.size);
        calls::scatterv(self.comm, dt.datatype(), send, counts, recv, limit)
    }

    fn gather_pod(
        &self,
        ty: PodType,
        send: &[u8],
        counts: &[usize],
        recv: Option<&mut [u8]>,
    ) -> Result<()> {
        if ty.size == 0 {
            return Ok(());
        }
        let dt = PodDatatype::new(ty)?;
        let limit = self.limit(ty.size);
        calls::gatherv(self.comm, dt.datatype(), send, counts, recv, limit)
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
