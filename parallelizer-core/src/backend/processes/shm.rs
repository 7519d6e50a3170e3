//! Shared memory for large payloads: an anonymous memfd, written once by the
//! sender and passed to each receiver over its socket with `SCM_RIGHTS`, so
//! a broadcast of 100 MB is copied into the kernel once, not once per worker.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};

const SEALS: libc::c_int =
    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;

/// A memfd holding `bytes`, sealed against any change (so a receiver's
/// mapping can neither shrink under it, which would be SIGBUS, nor change).
pub(crate) fn create(bytes: &[u8]) -> Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and valid flags.
    let fd = unsafe {
        libc::memfd_create(
            c"parallelizer-msg".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    // SAFETY: fcntl on the memfd just written.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(OwnedFd::from(file))
}

/// Reads the whole of a received memfd, which must hold exactly `len` bytes
/// (checked before allocating).
pub(crate) fn read_all(fd: &OwnedFd, len: u64) -> Result<Vec<u8>> {
    let file = File::from(fd.try_clone()?);
    let size = file.metadata()?.len();
    if size != len {
        return Err(Error::Codec(format!(
            "a shared-memory message announces {len} bytes but holds {size}"
        )));
    }
    let mut out = vec![0u8; len as usize];
    file.read_exact_at(&mut out, 0)?;
    Ok(out)
}

/// A read-only shared mapping of a received memfd; unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&[u8]` access only.
unsafe impl Sync for Mapping {}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `map` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Maps a received memfd read-only; it must hold exactly `len > 0` bytes.
/// The sender never writes to it after sending, so the view is stable.
pub(crate) fn map(fd: &OwnedFd, len: u64) -> Result<Mapping> {
    let file = File::from(fd.try_clone()?);
    let size = file.metadata()?.len();
    if size != len || len == 0 {
        return Err(Error::Codec(format!(
            "a shared-memory message announces {len} bytes but holds {size}"
        )));
    }
    // SAFETY: fcntl on a received descriptor.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 || seals & SEALS != SEALS {
        return Err(Error::Codec(
            "a shared-memory message that is not sealed against changes".into(),
        ));
    }
    let len = usize::try_from(len).map_err(|_| Error::Codec("shared message too large".into()))?;
    // SAFETY: mapping a regular memfd read-only; checked below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(Mapping { ptr, len })
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
        // SAFETY: plain memfd_create.
        let raw = unsafe { libc::memfd_create(c"t".as_ptr(), libc::MFD_CLOEXEC) };
        let mut f = unsafe { File::from_raw_fd(raw) };
        f.write_all(&[1, 2]).unwrap();
        let unsealed = OwnedFd::from(f);
        assert!(matches!(map(&unsealed, 2), Err(Error::Codec(m)) if m.contains("sealed")));
    }
}
