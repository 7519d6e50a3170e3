//! Shared memory for large payloads: an anonymous memfd, written once by the
//! sender and passed to each receiver over its socket with `SCM_RIGHTS`, so
//! a broadcast of 100 MB is copied into the kernel once, not once per worker.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

use memmap2::{Mmap, MmapOptions};
use rustix::fs::{MemfdFlags, SealFlags};

use crate::error::{Error, Result};

/// No write, grow or shrink, and no unsealing.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE)
    .union(SealFlags::SEAL);

/// A memfd holding `bytes`, sealed against any change (so a receiver's
/// mapping can neither shrink under it, which would be SIGBUS, nor change).
pub(super) fn create(bytes: &[u8]) -> Result<OwnedFd> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let fd = rustix::fs::memfd_create("parallelizer-msg", flags).map_err(std::io::Error::from)?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    rustix::fs::fcntl_add_seals(&file, SEALS).map_err(std::io::Error::from)?;
    Ok(OwnedFd::from(file))
}

/// A received memfd as a file, which must hold exactly `len` bytes (and,
/// with `nonempty`, more than none).
fn open_checked(fd: &OwnedFd, len: u64, nonempty: bool) -> Result<File> {
    let file = File::from(fd.try_clone()?);
    let size = file.metadata()?.len();
    if size != len || (nonempty && len == 0) {
        return Err(Error::Codec(format!(
            "a shared-memory message announces {len} bytes but holds {size}"
        )));
    }
    Ok(file)
}

/// Reads the whole of a received memfd, which must hold exactly `len` bytes
/// (checked before allocating).
pub(super) fn read_all(fd: &OwnedFd, len: u64) -> Result<Vec<u8>> {
    let file = open_checked(fd, len, false)?;
    let mut out = vec![0u8; len as usize];
    file.read_exact_at(&mut out, 0)?;
    Ok(out)
}

/// Maps a received memfd read-only; it must hold exactly `len > 0` bytes
/// and be sealed against every change, so the view is stable.
pub(super) fn map(fd: &OwnedFd, len: u64) -> Result<Mmap> {
    let file = open_checked(fd, len, true)?;
    let sealed = rustix::fs::fcntl_get_seals(&file).is_ok_and(|s| s.contains(SEALS));
    if !sealed {
        return Err(Error::Codec(
            "a shared-memory message that is not sealed against changes".into(),
        ));
    }
    let len = usize::try_from(len).map_err(|_| Error::Codec("shared message too large".into()))?;
    // SAFETY: the memfd is sealed against writes, growing and shrinking
    // (checked above, and seals cannot be removed), so no process can
    // change or truncate the bytes under this read-only mapping.
    let mapping = unsafe { MmapOptions::new().len(len).map(&file) }?;
    Ok(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_size_check() {
        let fd = create(&[1, 2, 3, 4]).unwrap();
        assert_eq!(read_all(&fd, 4).unwrap(), [1, 2, 3, 4]);
        assert!(matches!(read_all(&fd, 1 << 60), Err(Error::Codec(_))));
        assert_eq!(map(&fd, 4).unwrap().as_ref(), [1, 2, 3, 4]);
        assert!(matches!(map(&fd, 5), Err(Error::Codec(_))));
        // An unsealed memfd is refused.
        let raw = rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC).unwrap();
        let mut f = File::from(raw);
        f.write_all(&[1, 2]).unwrap();
        let unsealed = OwnedFd::from(f);
        assert!(matches!(map(&unsealed, 2), Err(Error::Codec(m)) if m.contains("sealed")));
    }
}
