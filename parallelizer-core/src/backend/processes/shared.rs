//! The shared memory of shared arrays on `processes`: a memfd that every
//! process maps read-write, its descriptor passed with the frames of the
//! messages that hold a handle to it (`SCM_RIGHTS`).
//!
//! The memfd is sealed against shrinking and growing (writes stay
//! allowed), and a received one is mapped only if it is: no process can
//! truncate it under another's mapping, which would make every access past
//! the new end a SIGBUS. Nothing is ever created in `/dev/shm`: the kernel
//! frees a memfd once no process holds its descriptor or a mapping, so a
//! killed rank leaks nothing either.

use std::any::Any;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use memmap2::{MmapMut, MmapOptions};
use rustix::fs::{MemfdFlags, SealFlags};

use crate::attach::Attachment;
use crate::error::{Error, Result};
use crate::segment::{Backing, Export, Layout, Segment, SharedMemory, count_in_use};

/// The name of shared-array memfds (`/proc/PID/fd` shows `/memfd:NAME`).
const NAME: &str = "parallelizer-shared";

/// No growing or shrinking, and no unsealing; writes stay allowed.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// The most descriptors of shared arrays one message may carry.
pub(super) const MAX_ATTACHED: usize = 32;

/// A memfd mapped read-write into this process.
#[derive(Debug)]
pub(super) struct MemfdBacking {
    fd: OwnedFd,
    map: MmapMut,
    identity: (u64, u64),
}

fn io(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Io {
        message: format!("shared memory: {what}: {e}"),
        os_code: None,
    }
}

impl MemfdBacking {
    /// A new zeroed memfd of `len` bytes (at least one page's worth of
    /// one byte), sealed against resizing, mapped.
    fn create(len: usize) -> Result<MemfdBacking> {
        let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        let fd = rustix::fs::memfd_create(NAME, flags).map_err(|e| io("memfd_create", e))?;
        rustix::fs::ftruncate(&fd, len.max(1) as u64).map_err(|e| io("ftruncate", e))?;
        rustix::fs::fcntl_add_seals(&fd, SEALS).map_err(|e| io("sealing", e))?;
        MemfdBacking::map(fd)
    }

    /// Maps a memfd that came from another rank, after checking it is one
    /// of ours and sealed against resizing.
    pub(super) fn open(fd: OwnedFd) -> Result<MemfdBacking> {
        let sealed = rustix::fs::fcntl_get_seals(&fd).is_ok_and(|s| s.contains(SEALS));
        if !sealed {
            return Err(Error::Codec(
                "a shared array's memfd is not sealed against resizing".into(),
            ));
        }
        MemfdBacking::map(fd)
    }

    fn map(fd: OwnedFd) -> Result<MemfdBacking> {
        let stat = rustix::fs::fstat(&fd).map_err(|e| io("fstat", e))?;
        let len = usize::try_from(stat.st_size)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| {
                Error::Codec(format!("a shared array's memfd of {} bytes", stat.st_size))
            })?;
        let file = File::from(fd.try_clone().map_err(|e| io("dup", e))?);
        // SAFETY: the memfd is sealed against shrinking (checked by `open`,
        // done by `create`; seals cannot be removed), so the mapping never
        // reaches past the file's end. Its bytes change under the mapping
        // (other ranks write them), which is why the mapping is only ever
        // accessed as a segment: atomically or under a borrow of the table.
        let map =
            unsafe { MmapOptions::new().len(len).map_mut(&file) }.map_err(|e| io("mmap", e))?;
        count_in_use(true);
        Ok(MemfdBacking {
            fd,
            map,
            identity: (stat.st_dev as u64, stat.st_ino as u64),
        })
    }

    /// The descriptor, to pass to another process.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// SAFETY: the mapping is `map.len()` bytes, page-aligned (so aligned to
// SEGMENT_ALIGN), lives and stays where it is as long as this value, the
// file behind it cannot shrink (sealed), and a new memfd is zero.
unsafe impl Backing for MemfdBacking {
    fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_ptr().cast_mut()).expect("a mapping is never at address 0")
    }
    fn size(&self) -> usize {
        self.map.len()
    }
    fn export(&self) -> Export {
        Export::Attach
    }
    fn kind(&self) -> &'static str {
        "memfd"
    }
    fn identity(&self) -> (u64, u64) {
        self.identity
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for MemfdBacking {
    fn drop(&mut self) {
        // The mapping and the descriptor go with the fields.
        count_in_use(false);
    }
}

/// Memfd memory: what ranks that are processes of one machine share.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Memfd;

/// The [`Memfd`] provider.
pub(super) static MEMFD: Memfd = Memfd;

impl SharedMemory for Memfd {
    fn allocate(&self, layouts: &[Layout]) -> Result<Vec<Segment>> {
        layouts
            .iter()
            .map(|l| Segment::create(Box::new(MemfdBacking::create(l.bytes())?), *l))
            .collect()
    }
}

/// The descriptors of a message's attachments, to pass with its frame: each
/// must be a memfd segment (a heap array of a `threads` parallelizer cannot
/// reach another process).
pub(super) fn descriptors(attached: &[Attachment]) -> Result<Vec<BorrowedFd<'_>>> {
    if attached.len() > MAX_ATTACHED {
        return Err(Error::Codec(format!(
            "a message holds {} shared arrays; at most {MAX_ATTACHED} can go in one message",
            attached.len()
        )));
    }
    attached
        .iter()
        .map(|a| {
            let seg = a.downcast_ref::<Segment>();
            match seg.and_then(|s| s.backing::<MemfdBacking>()) {
                Some(m) => Ok(m.fd()),
                None => Err(Error::Codec(format!(
                    "shared memory ({}) cannot reach another process; make shared arrays \
                     with the processes parallelizer that sends them",
                    seg.map_or("not a segment", Segment::kind)
                ))),
            }
        })
        .collect()
}

/// The attachments of a received frame: each descriptor opened as a
/// segment, or the error saying why it could not be (reported when the
/// message is decoded, by the value that refers to it).
pub(super) fn attachments(fds: Vec<OwnedFd>) -> Vec<Attachment> {
    fds.into_iter()
        .map(
            |fd| match MemfdBacking::open(fd).and_then(|b| Segment::open(Box::new(b))) {
                Ok(seg) => Arc::new(seg) as Attachment,
                Err(e) => Arc::new(e) as Attachment,
            },
        )
        .collect()
}
