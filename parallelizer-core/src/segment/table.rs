//! The borrow table in a segment's header: which ranks read, write or use
//! atomically which elements of the segment's data, kept in the shared
//! memory itself so that every process (and thread) that maps the segment
//! sees the same table.
//!
//! The table is what makes the safe views of a shared array sound: a
//! `&[T]` or `&mut [T]` over shared memory is only created after the table
//! granted a borrow that no other rank holds in a conflicting way, and
//! every acquisition and release goes through one lock word with acquire
//! and release ordering, so everything a writer did before it released
//! its borrow happens before what a reader does after it acquired its own.
//!
//! Layout (all words little-endian `u64`, accessed only atomically):
//!
//! ```text
//! header (64 bytes)  magic, slots, data offset, data length, lock, 3 reserved
//! slot i (32 bytes)  state (0 = free; else kind | count << 2), pid, start, end
//! ```
//!
//! A borrow records the holder's process id. A conflicting borrow held by a
//! process that no longer exists (killed while it held a view) is taken
//! back, and so is the lock word; a live holder makes the acquisition fail
//! with an error that names it. Nothing read from the table can make this
//! code misbehave: slot indexes come from the layout this process
//! validated, and every value is only compared.

use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Header size in bytes.
pub(crate) const HEADER: usize = 64;
/// Size of one slot in bytes.
pub(crate) const SLOT: usize = 32;
/// The first word of every segment.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"PLZSHM01");

/// Word offsets in the header.
pub(crate) const W_MAGIC: usize = 0;
pub(crate) const W_SLOTS: usize = 1;
pub(crate) const W_DATA_OFFSET: usize = 2;
pub(crate) const W_DATA_LEN: usize = 3;
const W_LOCK: usize = 4;

/// How long an acquisition waits for the lock word before it gives up
/// (the lock is only ever held for a scan of the slots).
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// What a borrow may do with its elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Plain reads (`&[T]`); shared with other reads.
    Read = 1,
    /// Plain writes (`&mut [T]`); exclusive over its range.
    Write = 2,
    /// Atomic loads and stores; shared with other atomic access.
    Atomic = 3,
}

impl Access {
    fn from_bits(bits: u64) -> Access {
        match bits & 3 {
            1 => Access::Read,
            2 => Access::Write,
            _ => Access::Atomic,
        }
    }

    fn shared(self) -> bool {
        self != Access::Write
    }

    fn describe(self) -> &'static str {
        match self {
            Access::Read => "reading",
            Access::Write => "writing",
            Access::Atomic => "atomic access",
        }
    }
}

/// The borrow table of one segment, as mapped in this process.
pub(crate) struct Table {
    /// Start of the segment (the header).
    base: NonNull<u8>,
    slots: usize,
}

/// Two borrows conflict when their ranges overlap, unless both only read
/// or both only use atomics.
fn conflicts(a: Access, ra: &Range<u64>, b: Access, rb: &Range<u64>) -> bool {
    let overlap = ra.start < rb.end && rb.start < ra.end;
    overlap && !(a == b && a.shared())
}

impl Table {
    /// The table of a segment at `base` with `slots` slots.
    ///
    /// # Safety
    ///
    /// `base` must point to a segment header of at least
    /// `HEADER + slots * SLOT` bytes, 8-byte aligned, valid for as long as
    /// the table is used, and only ever accessed atomically (by every
    /// process that maps it).
    pub(crate) unsafe fn new(base: NonNull<u8>, slots: usize) -> Table {
        Table { base, slots }
    }

    /// Header word `i`.
    pub(crate) fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < HEADER / 8 + self.slots * SLOT / 8);
        // SAFETY: by the contract of `new`, the header and slots are valid,
        // 8-byte-aligned memory accessed only atomically for the lifetime
        // of `self`; `i` is below the number of words of header and slots
        // (callers index with constants below HEADER / 8 and slot words
        // below `slots`, checked by `slot_word`).
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().cast::<u64>().add(i)) }
    }

    /// Word `field` (0..4) of slot `s`.
    fn slot_word(&self, s: usize, field: usize) -> &AtomicU64 {
        assert!(s < self.slots && field < 4, "slot {s} of {}", self.slots);
        self.word(HEADER / 8 + s * (SLOT / 8) + field)
    }

    /// Takes the lock word. A holder that is another, dead process is
    /// replaced; one that lives past [`LOCK_PATIENCE`] is an error (with
    /// `patient`; without, the wait goes on: a release must not be lost).
    fn lock(&self, patient: bool) -> Result<LockGuard<'_>> {
        let me = u64::from(std::process::id());
        let lock = self.word(W_LOCK);
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            match lock.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Ok(LockGuard { lock }),
                Err(0) => continue,
                Err(holder) => {
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                        continue;
                    }
                    if holder != me && !process_alive(holder) {
                        if lock
                            .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                            .is_ok()
                        {
                            return Ok(LockGuard { lock });
                        }
                        continue;
                    }
                    if patient && start.elapsed() > LOCK_PATIENCE {
                        return Err(Error::ContractViolation(format!(
                            "the borrow table of a shared array has been locked by process \
                             {holder} for {LOCK_PATIENCE:?} (is it stopped?)"
                        )));
                    }
                    if spins < 1024 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            }
        }
    }

    /// Borrows the elements `range` for `access`; the slot to release.
    /// Fails, without waiting, when another borrow conflicts (see
    /// [`conflicts`]): the error names its holder and what it does.
    pub(crate) fn acquire(&self, access: Access, range: Range<u64>) -> Result<usize> {
        let me = u64::from(std::process::id());
        let _lock = self.lock(true)?;
        let mut free = None;
        let mut join = None;
        for s in 0..self.slots {
            let state = self.slot_word(s, 0).load(Ordering::Relaxed);
            if state == 0 {
                free = free.or(Some(s));
                continue;
            }
            let kind = Access::from_bits(state);
            let pid = self.slot_word(s, 1).load(Ordering::Relaxed);
            let held = self.slot_word(s, 2).load(Ordering::Relaxed)
                ..self.slot_word(s, 3).load(Ordering::Relaxed);
            if conflicts(access, &range, kind, &held) {
                if pid != me && !process_alive(pid) {
                    // Its holder is gone: the memory is no longer used there.
                    self.slot_word(s, 0).store(0, Ordering::Relaxed);
                    free = free.or(Some(s));
                    continue;
                }
                let who = if pid == me {
                    "this process".to_string()
                } else {
                    format!("process {pid}")
                };
                return Err(Error::ContractViolation(format!(
                    "shared array elements {}..{} are borrowed for {} by {who}, which conflicts \
                     with {} elements {}..{}; separate the two with a barrier (`wait()`) \
                     and drop views before it",
                    held.start,
                    held.end,
                    kind.describe(),
                    access.describe(),
                    range.start,
                    range.end
                )));
            }
            if access.shared() && kind == access && pid == me && held == range {
                join = join.or(Some(s));
            }
        }
        if let Some(s) = join {
            self.slot_word(s, 0).fetch_add(4, Ordering::Relaxed);
            return Ok(s);
        }
        let Some(s) = free else {
            return Err(Error::ContractViolation(format!(
                "a shared array has {} borrows at once, its limit; drop some views",
                self.slots
            )));
        };
        self.slot_word(s, 1).store(me, Ordering::Relaxed);
        self.slot_word(s, 2).store(range.start, Ordering::Relaxed);
        self.slot_word(s, 3).store(range.end, Ordering::Relaxed);
        self.slot_word(s, 0)
            .store(access as u64 | 1 << 2, Ordering::Relaxed);
        Ok(s)
    }

    /// Ends one borrow of slot `s` (returned by [`acquire`](Table::acquire)).
    pub(crate) fn release(&self, s: usize) {
        let Ok(_lock) = self.lock(false) else {
            return;
        };
        let state = self.slot_word(s, 0);
        let now = state.load(Ordering::Relaxed);
        if now >> 2 <= 1 {
            state.store(0, Ordering::Relaxed);
        } else {
            state.store(now - 4, Ordering::Relaxed);
        }
    }

    /// How many slots are taken (for tests).
    #[cfg(test)]
    pub(crate) fn taken(&self) -> usize {
        (0..self.slots)
            .filter(|&s| self.slot_word(s, 0).load(Ordering::Relaxed) != 0)
            .count()
    }
}

/// Holds the lock word; releases it (with release ordering) when dropped.
struct LockGuard<'a> {
    lock: &'a AtomicU64,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.store(0, Ordering::Release);
    }
}

/// Whether process `pid` still exists (a zombie does not count): a borrow
/// or lock it holds is then still in use. This process always exists.
///
/// Process ids are compared within one PID namespace: ranks that share
/// memory must see each other's ids (they do when one launcher on one
/// machine started them, as `processes` and `mpirun` do).
pub(crate) fn process_alive(pid: u64) -> bool {
    if pid == u64::from(std::process::id()) {
        return true;
    }
    other_process_alive(pid)
}

#[cfg(unix)]
fn other_process_alive(pid: u64) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    // SAFETY: `kill` with signal 0 sends no signal; it only checks that the
    // process exists and may be signalled. It touches no memory of ours.
    let r = unsafe { libc::kill(raw, 0) };
    if r != 0 {
        // EPERM: it exists but belongs to someone else.
        return std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    }
    !is_zombie(raw)
}

/// Off Unix a segment lives in one process's heap only (no memfd, no
/// tokens that cross processes), so no other process can hold a borrow.
#[cfg(not(unix))]
fn other_process_alive(_pid: u64) -> bool {
    false
}

/// Whether `pid` has exited and waits to be reaped (Linux: its state in
/// `/proc/PID/stat` is `Z` or `X`).
#[cfg(unix)]
fn is_zombie(pid: libc::pid_t) -> bool {
    #[cfg(target_os = "linux")]
    {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "pid (comm) S ...": the state follows the last ')'.
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) {
                return matches!(rest.trim_start().chars().next(), Some('Z' | 'X'));
            }
        }
        false
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zeroed table of `slots` slots in a heap buffer of words.
    fn table(words: &mut [u64], slots: usize) -> Table {
        assert!(words.len() * 8 >= HEADER + slots * SLOT);
        // SAFETY: the buffer outlives the table in each test, is 8-byte
        // aligned, and the tests only access it through the table.
        unsafe { Table::new(NonNull::new(words.as_mut_ptr().cast()).unwrap(), slots) }
    }

    #[test]
    fn reads_share_writes_exclude_overlaps() {
        let mut words = vec![0u64; 8 + 4 * 4];
        let t = table(&mut words, 4);
        let r1 = t.acquire(Access::Read, 0..10).unwrap();
        let r2 = t.acquire(Access::Read, 0..10).unwrap();
        assert_eq!(r1, r2, "same reader, same range: one slot");
        assert_eq!(t.taken(), 1);
        let err = t.acquire(Access::Write, 5..6).unwrap_err();
        assert!(err.to_string().contains("borrowed for reading"), "{err}");
        assert!(t.acquire(Access::Atomic, 3..4).is_err());
        t.release(r1);
        assert!(t.acquire(Access::Write, 5..6).is_err(), "one read is left");
        t.release(r2);
        let w1 = t.acquire(Access::Write, 0..5).unwrap();
        let w2 = t.acquire(Access::Write, 5..10).unwrap();
        assert!(t.acquire(Access::Write, 4..6).is_err());
        assert!(t.acquire(Access::Read, 0..10).is_err());
        t.release(w1);
        t.release(w2);
        let a1 = t.acquire(Access::Atomic, 0..10).unwrap();
        let a2 = t.acquire(Access::Atomic, 2..3).unwrap();
        assert!(t.acquire(Access::Read, 2..3).is_err());
        t.release(a1);
        t.release(a2);
        assert_eq!(t.taken(), 0);
    }

    #[test]
    fn full_table_and_dead_holders() {
        let mut words = vec![0u64; 8 + 2 * 4];
        let t = table(&mut words, 2);
        let a = t.acquire(Access::Write, 0..1).unwrap();
        let _b = t.acquire(Access::Write, 1..2).unwrap();
        let err = t.acquire(Access::Write, 2..3).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        t.release(a);
        // A borrow (and the lock) left behind by a process that is gone.
        let dead = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            child.wait().unwrap();
            u64::from(pid)
        };
        assert!(!process_alive(dead));
        assert!(process_alive(u64::from(std::process::id())));
        t.slot_word(0, 1).store(dead, Ordering::Relaxed);
        t.slot_word(0, 2).store(0, Ordering::Relaxed);
        t.slot_word(0, 3).store(100, Ordering::Relaxed);
        t.slot_word(0, 0)
            .store(Access::Write as u64 | 4, Ordering::Relaxed);
        t.word(W_LOCK).store(dead, Ordering::Relaxed);
        // The dead writer of 0..100 is taken back (slot 1, ours, writes
        // 1..2 and does not overlap), and so is the lock it left.
        let r = t.acquire(Access::Read, 50..51).unwrap();
        assert_eq!(r, 0);
        assert_eq!(t.word(W_LOCK).load(Ordering::Relaxed), 0);
        // A live holder is not taken back: this process's own write of 1..2.
        assert!(t.acquire(Access::Read, 0..2).is_err());
    }
}
