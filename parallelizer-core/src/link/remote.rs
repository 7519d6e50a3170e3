//! Loans across processes: plain data that a rank lends to ranks in other
//! processes of the same machine for the duration of one call, which they
//! copy straight out of the lender's memory with one `process_vm_readv`
//! (Linux cross-memory attach, what Open MPI's shared-memory transport uses
//! for large messages): one copy, by the reader, with no shared buffer in
//! between, no page faults on fresh shared memory and no second copy of the
//! payload on either side.
//!
//! The lender claims a [`Ticket`] for its buffer, sends [`Remote`] notes
//! (ordinary serde messages: the lender's process id, an address, a length
//! and the ticket's slot) and waits for every borrower's acknowledgement,
//! as [`lend`](super::lend::lend) does within one process. A ticket is an
//! id written into a slot of a static table; dropping it, before the
//! lender's borrow of the buffer ends, clears the slot. A borrower reads the
//! slot after its copy: if it still holds the ticket's id, the loan was live
//! during the whole copy; if not, the lender gave up (its call failed) and
//! the copy is an error, never data. So a borrower never returns bytes read
//! after the lender's call ended, as within one process.
//!
//! A system may forbid one process to read another (Yama's `ptrace_scope`
//! 2 or 3, a seccomp filter, a missing `CAP_SYS_PTRACE` across users):
//! the borrower then answers with [`Refused`], the lender sends the bytes
//! the ordinary way and lends no more for the rest of the session.

#[cfg(target_os = "linux")]
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::plain::PodType;

use super::spread::Spread;

/// How many loans one process can have open at once (a rank lends one
/// buffer per call; more only with several threads per process).
const SLOTS: usize = 64;

/// Every open ticket's id, by slot; 0 is a free slot.
static SLOT: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// Ticket ids, unique within this process for its lifetime.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[cfg(target_os = "linux")]
thread_local! {
    /// This thread's copies fail as where the system forbids them (tests).
    static REFUSING: Cell<bool> = const { Cell::new(false) };
}

/// Makes this thread's copies out of other processes' loans fail as they
/// would where the system forbids them, or stops that: for the tests of
/// the fallback, which no test machine run as root can provoke.
#[cfg(target_os = "linux")]
pub(crate) fn refuse_on_this_thread(on: bool) {
    REFUSING.with(|r| r.set(on));
}

/// An open loan of `bytes` to other processes (see the module docs).
pub(crate) struct Ticket<'a> {
    bytes: &'a [u8],
    slot: usize,
    id: u64,
}

impl<'a> Ticket<'a> {
    /// Opens a loan of `bytes`; `None` when every slot is taken.
    pub(crate) fn open(bytes: &'a [u8]) -> Option<Ticket<'a>> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let slot = SLOT.iter().position(|s| {
            s.compare_exchange(0, id, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        })?;
        Some(Ticket { bytes, slot, id })
    }

    /// The note that lends `len` bytes at `offset` of the buffer, elements
    /// of `ty`; `pushes`: the lender writes part of a large copy into the
    /// borrower's memory when asked (`push.rs`).
    pub(crate) fn note(&self, offset: usize, len: usize, ty: PodType, pushes: bool) -> Msg {
        debug_assert!(offset + len <= self.bytes.len());
        self.note_as(offset, len, ty.vec_name, pushes)
    }

    /// The note that lends the whole buffer, a `Vec` of plain data whose
    /// type name is `vec_name`.
    pub(crate) fn note_of(&self, vec_name: &str) -> Msg {
        self.note_as(0, self.bytes.len(), vec_name, false)
    }

    fn note_as(&self, offset: usize, len: usize, vec_name: &str, pushes: bool) -> Msg {
        Msg::new(Remote {
            pid: std::process::id(),
            addr: self.bytes.as_ptr() as u64 + offset as u64,
            len: len as u64,
            slot: &SLOT[self.slot] as *const AtomicU64 as u64,
            id: self.id,
            ty: vec_name.to_string(),
            pushes,
        })
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // SeqCst: a borrower that reads the slot after its copy sees the
        // loan closed if it was closed before the lender's borrow ended.
        SLOT[self.slot].store(0, Ordering::SeqCst);
    }
}

/// The body of a message that lends plain data across processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Remote {
    pid: u32,
    addr: u64,
    len: u64,
    slot: u64,
    id: u64,
    /// The type name of a `Vec` of the elements.
    ty: String,
    /// The lender writes part of the copy if the borrower asks (`push.rs`).
    pushes: bool,
}

/// A borrower's answer when it may not read the lender's memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Refused {
    why: String,
}

/// Why a copy out of a remote loan did not happen.
#[derive(Debug)]
pub(crate) enum CopyError {
    /// The system forbids reading the lender's memory: answer [`Refused`]
    /// and take the bytes the ordinary way.
    Refused(Refused),
    /// The copy failed or the loan ended during it.
    Failed(Error),
}

impl From<CopyError> for Error {
    fn from(e: CopyError) -> Error {
        match e {
            CopyError::Failed(e) => e,
            CopyError::Refused(r) => Error::Protocol(r.why),
        }
    }
}

impl Remote {
    /// The note a message carries, if it is one (an error if it cannot be
    /// decoded); the message back if not.
    pub(crate) fn from_msg(msg: Msg) -> std::result::Result<Result<Remote>, Msg> {
        if msg.type_name() != Some(std::any::type_name::<Remote>()) {
            return Err(msg);
        }
        Ok(msg.into_value::<Remote>())
    }

    /// The number of bytes lent.
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// An error unless the lent elements are of type `ty`.
    pub(crate) fn check(&self, ty: PodType) -> Result<()> {
        if self.ty == ty.vec_name {
            return Ok(());
        }
        Err(ty.mismatch(&self.ty))
    }

    /// Whether the lender writes part of the copy if asked (`push.rs`).
    pub(crate) fn pushes(&self) -> bool {
        self.pushes
    }

    /// The lender's address of the lent byte `at`.
    pub(crate) fn addr_of(&self, at: usize) -> u64 {
        self.addr + at as u64
    }

    /// Copies the lent bytes into `dst` (of exactly their length), on as
    /// many threads as `spread` allows.
    pub(crate) fn copy_to(
        &self,
        dst: &mut [u8],
        spread: Spread,
    ) -> std::result::Result<(), CopyError> {
        if dst.len() as u64 != self.len {
            return Err(CopyError::Failed(Error::Protocol(format!(
                "a copy of {} bytes from a loan of {}",
                dst.len(),
                self.len
            ))));
        }
        self.copy_part(0, dst, spread)?;
        self.check_live()
    }

    /// Copies the lent bytes from byte `at` on into `dst`, without
    /// [`check_live`](Self::check_live).
    pub(crate) fn copy_part(
        &self,
        at: usize,
        dst: &mut [u8],
        spread: Spread,
    ) -> std::result::Result<(), CopyError> {
        debug_assert!(at as u64 + dst.len() as u64 <= self.len);
        spread.copy(dst, |off, piece| {
            read(self.pid, self.addr + (at + off) as u64, piece)
        })
    }

    /// An error unless the loan is still open: after a copy, the proof
    /// that it read the lender's data and not what came after its call.
    pub(crate) fn check_live(&self) -> std::result::Result<(), CopyError> {
        let mut id = [0u8; 8];
        read(self.pid, self.slot, &mut id)?;
        if u64::from_ne_bytes(id) != self.id {
            return Err(CopyError::Failed(Error::Protocol(
                "a lent buffer was read after its owner's call ended".into(),
            )));
        }
        Ok(())
    }

    /// A copy of the lent bytes as an owned message of plain data (what a
    /// typed `receive` of a `Vec` takes over, checking the type name it
    /// carries), in 8-byte words.
    pub(crate) fn to_msg(&self) -> std::result::Result<Msg, CopyError> {
        let len = self.len();
        // Fresh memory, on huge pages when large and that pays (the copy
        // faults it in).
        let mut words: Vec<u64> = crate::pages::fresh_buffer(len.div_ceil(8));
        // Fresh memory: the copy stays on this thread (`spread.rs`).
        self.copy_to(
            &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len],
            Spread::ONE,
        )?;
        Ok(Msg::from_words(words, len).sent_as(&self.ty))
    }
}

impl Refused {
    /// The refusal a message carries, if it is one.
    pub(crate) fn from_msg(msg: &Msg) -> bool {
        msg.type_name() == Some(std::any::type_name::<Refused>())
    }

    /// The message that carries this refusal.
    pub(crate) fn into_msg(self) -> Msg {
        Msg::new(self)
    }
}

/// Copies `dst.len()` bytes at `addr` in process `pid` into `dst`.
fn read(pid: u32, addr: u64, dst: &mut [u8]) -> std::result::Result<(), CopyError> {
    cross(pid, addr, Local::Into(dst))
}

/// Copies `src` to `addr` in process `pid` (a lender's part of a copy its
/// borrower asked for: `push.rs`).
pub(crate) fn write(pid: u32, addr: u64, src: &[u8]) -> std::result::Result<(), CopyError> {
    cross(pid, addr, Local::From(src))
}

/// This process's side of a copy across processes.
enum Local<'a> {
    /// Read the other process's bytes into this buffer.
    Into(&'a mut [u8]),
    /// Write these bytes into the other process.
    From(&'a [u8]),
}

/// One copy between this process's `local` buffer and the same number of
/// bytes at `addr` in process `pid`, looping over partial transfers.
#[cfg(target_os = "linux")]
fn cross(pid: u32, addr: u64, local: Local<'_>) -> std::result::Result<(), CopyError> {
    if REFUSING.with(Cell::get) {
        return Err(CopyError::Refused(Refused {
            why: format!("copies with process {pid} refused on this thread (test)"),
        }));
    }
    let (base, len, writes) = match local {
        Local::Into(dst) => (dst.as_mut_ptr(), dst.len(), false),
        Local::From(src) => (src.as_ptr().cast_mut(), src.len(), true),
    };
    let name = if writes {
        "process_vm_writev"
    } else {
        "process_vm_readv"
    };
    let mut done = 0usize;
    while done < len {
        let local = libc::iovec {
            // SAFETY: `done < len`, so this stays inside the buffer.
            iov_base: unsafe { base.add(done) }.cast(),
            iov_len: len - done,
        };
        let remote = libc::iovec {
            iov_base: (addr as usize + done) as *mut libc::c_void,
            iov_len: len - done,
        };
        // SAFETY: `local` is the rest of this process's own buffer, borrowed
        // mutably for a read (the kernel writes only there) and shared for a
        // write (the kernel only reads it); the kernel checks `remote`
        // against the other process's mappings (a bad address is EFAULT,
        // not undefined behaviour here), and a copy with another process
        // never touches this one's memory outside `local`.
        let n = unsafe {
            if writes {
                libc::process_vm_writev(pid as libc::pid_t, &local, 1, &remote, 1, 0)
            } else {
                libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0)
            }
        };
        if n <= 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES | libc::ENOSYS) => CopyError::Refused(Refused {
                    why: format!("{name} of process {pid}: {e}"),
                }),
                _ if n == 0 => CopyError::Failed(Error::Protocol(format!(
                    "{name} of process {pid} moved nothing at byte {done}"
                ))),
                _ => CopyError::Failed(Error::Protocol(format!(
                    "{name} of process {pid} failed at byte {done}: {e}"
                ))),
            });
        }
        done += n as usize;
    }
    Ok(())
}

/// Off Linux no process reads another's memory: every loan is refused
/// (and transports there never lend across processes).
#[cfg(not(target_os = "linux"))]
fn cross(pid: u32, _addr: u64, local: Local<'_>) -> std::result::Result<(), CopyError> {
    let len = match local {
        Local::Into(dst) => dst.len(),
        Local::From(src) => src.len(),
    };
    Err(CopyError::Refused(Refused {
        why: format!("cannot copy {len} bytes with process {pid}'s memory on this system"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(msg: Msg) -> Remote {
        Remote::from_msg(msg).ok().unwrap().unwrap()
    }

    #[test]
    fn a_note_copies_out_until_its_ticket_is_dropped() {
        let data: Vec<u8> = (0..64).collect();
        let ty = PodType::of::<u8>();
        let kept = {
            let ticket = Ticket::open(&data).unwrap();
            let note = note(ticket.note(8, 16, ty, false));
            let mut out = [0u8; 16];
            note.copy_to(&mut out, Spread::ONE).unwrap();
            assert_eq!(out[..], data[8..24]);
            assert!(note.check(PodType::of::<u32>()).is_err());
            assert!(matches!(
                note.copy_to(&mut [0u8; 3], Spread::ONE),
                Err(CopyError::Failed(_))
            ));
            note
        };
        // The ticket is gone (the lender's call ended): a copy now is an
        // error, never data, although the bytes are still there.
        let mut out = [0u8; 16];
        assert!(matches!(
            kept.copy_to(&mut out, Spread::ONE),
            Err(CopyError::Failed(_))
        ));
        assert!(matches!(kept.to_msg(), Err(CopyError::Failed(_))));
    }

    #[test]
    fn notes_become_owned_messages_and_others_pass_through() {
        let data = vec![1.5f64, 2.5, 3.5];
        let ticket = Ticket::open(bytemuck::cast_slice(&data)).unwrap();
        let ty = PodType::of::<f64>();
        let note = note(ticket.note(8, 16, ty, false));
        let got: Vec<f64> = note.to_msg().unwrap().into_value().unwrap();
        assert_eq!(got, [2.5, 3.5]);
        let msg = note.to_msg().unwrap();
        assert!(msg.into_value::<Vec<i64>>().is_err());
        assert!(Remote::from_msg(Msg::new(3u8)).is_err());
        assert!(Refused::from_msg(&Refused { why: "no".into() }.into_msg()));
    }

    #[test]
    fn a_dropped_ticket_frees_its_slot_and_ids_are_never_reused() {
        let data = [0u8; 8];
        let a = Ticket::open(&data).unwrap();
        let (slot, id) = (a.slot, a.id);
        assert_eq!(SLOT[slot].load(Ordering::SeqCst), id);
        drop(a);
        assert_ne!(SLOT[slot].load(Ordering::SeqCst), id);
        let b = Ticket::open(&data).unwrap();
        assert_ne!(b.id, id);
    }
}
