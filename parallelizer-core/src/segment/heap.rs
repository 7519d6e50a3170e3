//! Heap segments: one allocation of this process, the shared memory of
//! ranks that are threads of one process (`serial`, `threads`, and user
//! backends whose ranks share an address space).

use std::alloc::Layout as AllocLayout;
use std::any::Any;
use std::ptr::NonNull;

use super::{Backing, Export, Layout, SEGMENT_ALIGN, Segment, SharedMemory, count_in_use};
use crate::error::{Error, Result};

/// One zeroed heap allocation.
#[derive(Debug)]
pub struct HeapBacking {
    ptr: NonNull<u8>,
    layout: AllocLayout,
}

impl HeapBacking {
    /// `len` zeroed bytes (at least one), aligned to [`SEGMENT_ALIGN`].
    pub fn zeroed(len: usize) -> Result<HeapBacking> {
        let layout = AllocLayout::from_size_align(len.max(1), SEGMENT_ALIGN)
            .map_err(|e| Error::Config(format!("a shared array of {len} bytes: {e}")))?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::Io {
            message: format!("cannot allocate {len} bytes of shared memory"),
            os_code: None,
        })?;
        count_in_use(true);
        Ok(HeapBacking { ptr, layout })
    }
}

// SAFETY: the allocation is owned by this value alone and freed only in its
// `Drop`; the pointer is never used to create references here.
unsafe impl Send for HeapBacking {}
// SAFETY: as for `Send`: `&HeapBacking` only exposes the pointer value.
unsafe impl Sync for HeapBacking {}

// SAFETY: `ptr` is a live allocation of `layout.size()` bytes,
// aligned to SEGMENT_ALIGN, zeroed when made, freed only when this value
// drops, and never moved.
unsafe impl Backing for HeapBacking {
    fn base(&self) -> NonNull<u8> {
        self.ptr
    }
    fn size(&self) -> usize {
        self.layout.size()
    }
    fn export(&self) -> Export {
        Export::Attach
    }
    fn kind(&self) -> &'static str {
        "heap"
    }
    fn identity(&self) -> (u64, u64) {
        (self.ptr.as_ptr() as u64, 0)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for HeapBacking {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this very layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
        count_in_use(false);
    }
}

/// The shared memory of ranks that share one address space: a heap
/// allocation, handed to the other ranks as an `Arc` (the default
/// [`SharedMemory`](crate::backend::SharedMemory) of every backend).
#[derive(Debug, Default, Clone, Copy)]
pub struct Heap;

/// The [`Heap`] provider.
pub static HEAP: Heap = Heap;

impl SharedMemory for Heap {
    fn allocate(&self, layouts: &[Layout]) -> Result<Vec<Segment>> {
        layouts
            .iter()
            .map(|l| Segment::create(Box::new(HeapBacking::zeroed(l.bytes())?), *l))
            .collect()
    }
}
