//! Shared memory for large payloads: an anonymous memfd, written once by the
//! sender and passed to each receiver over its socket with `SCM_RIGHTS`, so
//! a broadcast of 100 MB is copied into the kernel once, not once per worker.
//!
//! A received memfd is trusted no further than its checks ([`open`]): it
//! must hold exactly the bytes its frame announces, be sealed against every
//! change, and have all of its pages — a sparse memfd announcing 512 GiB
//! costs its sender nothing, and would make the receiver allocate 512 GiB
//! to copy it out.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use memmap2::{Mmap, MmapOptions};
use rustix::fs::{MemfdFlags, SealFlags};

use crate::error::Result;

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

/// A sealed memfd of `len` bytes with no page behind them: what a hostile
/// peer could send (fault-injection tests).
pub(super) fn sparse(len: u64) -> Result<OwnedFd> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let fd =
        rustix::fs::memfd_create("parallelizer-sparse", flags).map_err(std::io::Error::from)?;
    rustix::fs::ftruncate(&fd, len).map_err(std::io::Error::from)?;
    rustix::fs::fcntl_add_seals(&fd, SEALS).map_err(std::io::Error::from)?;
    Ok(fd)
}

/// Checks a received memfd against the `len` bytes its frame announces and
/// maps it read-only (`None` for an empty one); why not, otherwise. Nothing
/// is allocated or mapped before every check passed.
pub(super) fn open(fd: &OwnedFd, len: u64) -> Result<Option<Mmap>, String> {
    let stat = rustix::fs::fstat(fd).map_err(|e| format!("fstat: {e}"))?;
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size != len {
        return Err(format!(
            "it announces {len} bytes but its memfd holds {size}"
        ));
    }
    let sealed = rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(SEALS));
    if !sealed {
        return Err("its memfd is not sealed against changes".into());
    }
    // A memfd counts its pages in 512-byte blocks; one written in full has
    // at least its size in them (pages swapped out still count).
    let backed = u64::try_from(stat.st_blocks)
        .unwrap_or(0)
        .saturating_mul(512);
    if backed < len {
        return Err(format!(
            "its memfd announces {len} bytes but only {backed} are backed by memory (a sparse file)"
        ));
    }
    if len == 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| format!("{len} bytes do not fit in memory"))?;
    let file = File::from(fd.try_clone().map_err(|e| e.to_string())?);
    // SAFETY: the memfd is sealed against writes, growing and shrinking
    // (checked above, and seals cannot be removed), so no process can
    // change or truncate the bytes under this read-only mapping.
    let mapping = unsafe { MmapOptions::new().len(len).map(&file) }.map_err(|e| e.to_string())?;
    Ok(Some(mapping))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_checks() {
        let fd = create(&[1, 2, 3, 4]).unwrap();
        assert_eq!(open(&fd, 4).unwrap().unwrap().as_ref(), [1, 2, 3, 4]);
        let err = open(&fd, 1 << 60).unwrap_err();
        assert!(err.contains("holds 4"), "{err}");
        assert!(open(&create(&[]).unwrap(), 0).unwrap().is_none());
        // A large written memfd is fully backed.
        let big = vec![7u8; (3 << 20) + 5];
        assert_eq!(
            open(&create(&big).unwrap(), big.len() as u64)
                .unwrap()
                .unwrap()
                .len(),
            big.len()
        );
        // An unsealed memfd is refused.
        let raw = rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC).unwrap();
        let mut f = File::from(raw);
        f.write_all(&[1, 2]).unwrap();
        let unsealed = OwnedFd::from(f);
        assert!(open(&unsealed, 2).unwrap_err().contains("sealed"));
        // A sealed but sparse one, announcing 512 GiB, is refused unmapped.
        let err = open(&sparse(512 << 30).unwrap(), 512 << 30).unwrap_err();
        assert!(err.contains("sparse"), "{err}");
    }
}
