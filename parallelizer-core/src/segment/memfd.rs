//! Memfd segments: memory that processes of one machine map read-write
//! (`processes`, and `mpi` ranks on one node).
//!
//! The memfd is sealed against shrinking and growing (writes stay
//! allowed), and a received one is mapped only if it is: no process can
//! truncate it under another's mapping, which would make every access past
//! the new end a SIGBUS. Nothing is ever created in `/dev/shm`: the kernel
//! frees a memfd once no process holds its descriptor or a mapping, so a
//! killed rank leaks nothing either.
//!
//! A handle travels either as an attachment (the transport passes the
//! descriptor over a Unix socket: `processes`) or as a token naming
//! `/proc/PID/fd/FD` of the sender, which the receiver opens ([`resolve`]:
//! `mpi`, whose ranks have no socket to pass descriptors on). A token is
//! only good while the sender still holds the handle, and only on the
//! sender's machine; anything else is an error, never other memory (the
//! receiver checks the memfd's identity against the one the handle carries).

use std::any::Any;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use memmap2::{MmapMut, MmapOptions};
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

use super::{Backing, Export, Layout, Segment, SharedMemory, count_in_use};
use crate::error::{Error, Result};

/// The name of shared-array memfds (`/proc/PID/fd` shows `/memfd:NAME`).
const NAME: &str = "parallelizer-shared";

/// No growing or shrinking, and no unsealing; writes stay allowed.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// A memfd mapped read-write into this process.
#[derive(Debug)]
pub struct MemfdBacking {
    fd: OwnedFd,
    map: MmapMut,
    identity: (u64, u64),
    /// Handles are written as a token (`/proc/PID/fd/FD` of this
    /// process) instead of an attachment: for ranks that have no socket
    /// to pass descriptors on (MPI).
    by_token: bool,
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
    pub fn create(len: usize, by_token: bool) -> Result<MemfdBacking> {
        let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        let fd = rustix::fs::memfd_create(NAME, flags).map_err(|e| io("memfd_create", e))?;
        rustix::fs::ftruncate(&fd, len.max(1) as u64).map_err(|e| io("ftruncate", e))?;
        rustix::fs::fcntl_add_seals(&fd, SEALS).map_err(|e| io("sealing", e))?;
        MemfdBacking::map(fd, by_token)
    }

    /// Maps a memfd that came from another rank, after checking it is one
    /// of ours and sealed against resizing.
    pub fn open(fd: OwnedFd, by_token: bool) -> Result<MemfdBacking> {
        let sealed = rustix::fs::fcntl_get_seals(&fd).is_ok_and(|s| s.contains(SEALS));
        if !sealed {
            return Err(Error::Codec(
                "a shared array's memfd is not sealed against resizing".into(),
            ));
        }
        MemfdBacking::map(fd, by_token)
    }

    fn map(fd: OwnedFd, by_token: bool) -> Result<MemfdBacking> {
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
            by_token,
        })
    }

    /// The descriptor, to pass to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
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
        if self.by_token {
            let fd = self.fd.as_raw_fd() as u64 & 0xffff_ffff;
            Export::Token(u64::from(std::process::id()) << 32 | fd)
        } else {
            Export::Attach
        }
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

/// Memfds whose handles travel as tokens: the shared memory of MPI ranks
/// on one node.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemfdByToken;

/// The [`MemfdByToken`] provider.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use parallelizer_core::backend::{Layout, MEMFD_BY_TOKEN, SharedMemory, resolve_memfd_token};
/// let seg = MEMFD_BY_TOKEN.allocate(&[Layout::new(64, 4)]).unwrap().remove(0);
/// assert_eq!(seg.kind(), "memfd");
/// let b = seg.backing::<parallelizer_core::backend::MemfdBacking>().unwrap();
/// # let _ = (b, resolve_memfd_token);
/// # }
/// ```
pub static MEMFD_BY_TOKEN: MemfdByToken = MemfdByToken;

impl SharedMemory for MemfdByToken {
    fn allocate(&self, layouts: &[Layout]) -> Result<Vec<Segment>> {
        layouts
            .iter()
            .map(|l| Segment::create(Box::new(MemfdBacking::create(l.bytes(), true)?), *l))
            .collect()
    }
}

/// Opens the segment a token names (`/proc/PID/fd/FD` of the sender): the
/// [`TokenResolver`](super::TokenResolver) of backends that use
/// [`MEMFD_BY_TOKEN`].
pub fn resolve(token: u64) -> Result<Segment> {
    let (pid, fd) = (token >> 32, token & 0xffff_ffff);
    let path = format!("/proc/{pid}/fd/{fd}");
    let opened = rustix::fs::open(&path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty());
    let fd = opened.map_err(|e| {
        Error::Codec(format!(
            "a shared array of process {pid} cannot be opened here ({path}: {e}): its sender \
             no longer holds it (a handle sent over `mpi` is good while its sender holds one)"
        ))
    })?;
    Segment::open(Box::new(MemfdBacking::open(fd, true)?))
}
