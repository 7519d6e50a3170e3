//! The shared memory of shared arrays on `processes`: a memfd that every
//! process maps read-write, its descriptor passed with the frames of the
//! messages that hold a handle to it (`SCM_RIGHTS`).
//!
//! The memory itself is a [`MemfdBacking`] (`segment::memfd`).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::attach::Attachment;
use crate::error::{Error, Result};
use crate::segment::{Layout, MemfdBacking, Segment, SharedMemory};

/// The most descriptors of shared arrays one message may carry.
pub(super) const MAX_ATTACHED: usize = 32;

/// Memfd memory: what ranks that are processes of one machine share.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Memfd;

/// The [`Memfd`] provider.
pub(super) static MEMFD: Memfd = Memfd;

impl SharedMemory for Memfd {
    fn allocate(&self, layouts: &[Layout]) -> Result<Vec<Segment>> {
        layouts
            .iter()
            .map(|l| Segment::create(Box::new(MemfdBacking::create(l.bytes(), false)?), *l))
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
            |fd| match MemfdBacking::open(fd, false).and_then(|b| Segment::open(Box::new(b))) {
                Ok(seg) => Arc::new(seg) as Attachment,
                Err(e) => Arc::new(e) as Attachment,
            },
        )
        .collect()
}
