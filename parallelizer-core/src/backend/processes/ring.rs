//! Shared-memory rings: the fast path between the ranks of one pool.
//!
//! Main creates, before it spawns anybody, one memfd holding a
//! single-producer/single-consumer byte ring for every ordered pair of
//! ranks, and one eventfd per rank (its doorbell); every worker inherits
//! them (`launch`) and maps the memfd. A frame to a peer is then the same
//! bytes it would be on the socket — the 44-byte header of `frame`, the type
//! name, the payload — copied into the ring from this rank to that peer, and
//! the peer parses them with the same reader it uses for its socket. No
//! system call is made while both sides are busy: a receiver spins a few
//! microseconds on the rings' indices before it sleeps (`endpoint`), and
//! only a rank that said it sleeps is woken, by a write to its eventfd. The
//! eventfd is polled together with the sockets, so a peer's death (EOF on its
//! socket) wakes a sleeping rank at once, as before.
//!
//! A frame larger than the ring streams through it: the writer publishes
//! every [`PIECE`] it copies and the reader frees every piece it copies
//! out, so both copy at once (a 1 MiB message took 78-94 µs one way through
//! a 1 MiB ring, against 174-241 µs on the socket, which this replaced for
//! frames over a quarter of a ring; a ring that published only when full
//! made its two ranks take turns and was slower still). That is what two
//! pipelined copies cost here, not this code's overhead: a C program making
//! the same copies with nothing else took about as long (33-36 µs against
//! 34-39 µs on one machine). Padding a frame so that its payload lies in
//! the ring at its offset within a cache line in the sender's memory gained
//! at most 2 % and now and then fell into a state ten times slower, so
//! frames are not padded.
//!
//! Where ranks share cores (more ranks than the machine has), rings are
//! up to four times larger (4 MiB, within twice the memory budget): a
//! chunk of a few MB that main sends a worker fits, and main writes it
//! without waiting for a worker that waits for a core to read it. The
//! fine map inside a region (a scatter of 2 MB chunks) on `processes:4` on
//! 2 cores took 5.7-8.4 ms against 7.4-12.2 ms with 1 MiB rings, in three
//! alternated runs of five. Not where every rank has a core: streaming a
//! frame through a larger ring reaches farther out of the cache (16 MiB
//! `receive_into` on `processes:2`: 1344-1693 µs against 1181-1250 µs), and
//! a writer held 1 MiB ahead of its reader in a 4 MiB ring lost what the
//! larger ring gained on shared cores. Workers take the capacity from the
//! memfd's size.
//!
//! The socket keeps what a ring cannot carry: descriptors (the memfd of a
//! large broadcast: `shm`) and death detection. A frame sent on the
//! socket goes once the ring to that peer is empty, and the sender then
//! counts it in the ring's control block, so the receiver, which reads the
//! socket before the ring bytes it has seen published, keeps each peer's
//! frames in the order they were sent.
//!
//! ```text
//! memfd layout (LINE = 128 bytes, cap = ring capacity, a power of two)
//!   nprocs × 2 LINE                 per rank: +0 u32 "asleep" flag (its doorbell),
//!                                   +64 u32 the CPU it last waited on, plus 1,
//!                                   +LINE its two posts of 64 bytes (`posts`)
//!   nprocs × nprocs × (2 LINE + cap) ring from i to j at index i * nprocs + j:
//!       +0      u64 head: bytes published by i (only i writes it)
//!       +8      u64 frames i sent j on the socket since the start
//!       +16     u64 resume: where the stream went on after i's last rewind
//!       +LINE   u64 tail: bytes consumed by j (only j writes it)
//!       +2 LINE cap bytes of data; byte n of the stream is at n % cap
//! ```
//!
//! Indices only grow (u64 byte counts never wrap in practice). A writer
//! that finds its ring empty past its *window*, with what it has left to
//! write no longer than the bytes behind its head, *rewinds*: it goes on at
//! the next multiple of the capacity (the ring's first byte), and says so
//! in `resume` before it publishes; its reader, whose tail is then where the
//! writer left off, skips to `resume`. Messages that are read as fast as
//! they are sent (ping-pongs, collectives) so keep reusing the window,
//! faulted in once, instead of walking through the whole ring: the first
//! touch of a page of shared memory costs about 2-3 µs here (the host backs
//! it; `MADV_POPULATE_WRITE` of a whole range saved 10-25 % a page, so
//! nothing is populated ahead), and an 8 KiB broadcast took 4.6 µs for as
//! long as its ring had fresh pages ahead (the first 1 MiB), 0.9 µs after.
//! (Rewinding whenever the next write fits behind the head reused fewer
//! pages but made that broadcast slower in a steady loop, 1.2 µs against
//! 0.5 µs.)
//!
//! The window grows with the ring's traffic, from [`WARM`] (64 KiB) to a
//! quarter of the ring once [`GROWTH`] times that has gone through it, so
//! that the pages a ring faults in are paid for by what it carried: with a
//! quarter from the first byte, the first 130 broadcasts of 8 KiB on
//! `processes:4` (rings of 4 MiB) took 21-29 µs each, faulting in 1 MiB of
//! each ring two pages a call, and the first 200 took 2.9-4.5 ms in all;
//! with a fixed 64 KiB window they took 0.65-1.1 ms in most runs, but a
//! steady loop with it stayed slower than with a quarter (medians of calls
//! 200-400, six alternated runs each: 2.7-3.75 µs against 2.4-3.4 µs), hence
//! the growth. Growing, in the VM's fast state, the first 200 took
//! 0.67-0.78 ms, and after 4 000 calls the loop was as fast as with a
//! quarter (1.54-1.58 against 1.57-1.75 µs).
//!
//! A reader trusts no index: a head more than `cap` ahead of its tail, or
//! behind it, is a corrupt stream ([`Rings::read`]). The memfd is sealed
//! against growing and shrinking, so no peer can make a mapping fault
//! (`SIGBUS`).

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use memmap2::{MmapOptions, MmapRaw};
use rustix::event::{EventfdFlags, eventfd};
use rustix::fs::{MemfdFlags, SealFlags};

/// The name of the rings' memfd (checked when a worker adopts it).
pub(super) const MEMFD: &str = "parallelizer-rings";

/// A cache line and its neighbour (the prefetcher pulls pairs), so that the
/// producer's and the consumer's indices never share one.
const LINE: usize = 128;
/// A ring's control block: head and socket count, then tail.
const CTRL: usize = 2 * LINE;
/// Each rank's lines: its doorbell flag and CPU, then its two posts.
const RANK: usize = 2 * LINE;
/// The bytes of one post (`posts`).
pub(super) const POST: usize = 64;

/// Total ring memory aimed at per pool (only what is used is ever backed).
const BUDGET: usize = 32 << 20;
const MIN_CAP: usize = 16 << 10;
const MAX_CAP: usize = 1 << 20;
/// Where ranks share cores, twice the budget and rings of up to 4 MiB
/// (module docs).
const CROWDED_BUDGET: usize = 2 * BUDGET;
const CROWDED_MAX_CAP: usize = 4 * MAX_CAP;
/// How many bytes a writer copies before it publishes them, and a reader
/// before it frees them: a frame larger than that streams through the ring,
/// both ranks copying at once.
const PIECE: usize = 64 << 10;

/// The window a ring's writer rewinds past (module docs) while little has
/// gone through it.
const WARM: usize = 64 << 10;
/// The window grows to a quarter of the ring as this many times its size
/// goes through it (module docs).
const GROWTH: u64 = 16;

/// No growing or shrinking (a mapping must never lose its pages), and no
/// unsealing; writes stay allowed.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// The capacity of each ring in a pool of `nprocs` ranks, `crowded` if
/// they share cores: a power of two, smaller with more pairs.
pub(super) fn capacity(nprocs: usize, crowded: bool) -> usize {
    let (budget, max) = match crowded {
        true => (CROWDED_BUDGET, CROWDED_MAX_CAP),
        false => (BUDGET, MAX_CAP),
    };
    let pairs = (nprocs * nprocs.saturating_sub(1)).max(1);
    let want = (budget / pairs).clamp(MIN_CAP, max);
    1 << (usize::BITS - 1 - want.leading_zeros())
}

/// The memfd's size for `nprocs` ranks and rings of `cap` bytes.
fn size(nprocs: usize, cap: usize) -> usize {
    nprocs * RANK + nprocs * nprocs * (CTRL + cap)
}

/// The capacity of rings in a memfd of `size` bytes for `nprocs` ranks, if
/// [`capacity`] can have chosen it.
fn capacity_of(nprocs: usize, size: u64) -> Option<usize> {
    let size = usize::try_from(size).ok()?;
    let cap = size.checked_sub(nprocs * RANK)? / (nprocs * nprocs).max(1);
    let cap = cap.checked_sub(CTRL)?;
    let chosen = [false, true]
        .into_iter()
        .any(|c| capacity(nprocs, c) == cap);
    (chosen && self::size(nprocs, cap) == size).then_some(cap)
}

/// One rank's view of the pool's rings.
pub(super) struct Rings {
    map: MmapRaw,
    rank: usize,
    nprocs: usize,
    cap: usize,
    memfd: OwnedFd,
    /// Every rank's doorbell, by rank.
    bells: Vec<OwnedFd>,
    /// Bytes this rank has written into its ring to each peer, by peer
    /// (its window: [`Rings::window`]); this process's own count.
    traffic: Box<[AtomicU64]>,
}

impl std::fmt::Debug for Rings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rings")
            .field("rank", &self.rank)
            .field("nprocs", &self.nprocs)
            .field("cap", &self.cap)
            .finish()
    }
}

impl Rings {
    /// Main (rank 0): new rings and doorbells for `nprocs` ranks, which
    /// share cores if `crowded`.
    pub(super) fn create(nprocs: usize, crowded: bool) -> io::Result<Rings> {
        let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        let memfd = rustix::fs::memfd_create(MEMFD, flags)?;
        let cap = capacity(nprocs, crowded);
        rustix::fs::ftruncate(&memfd, size(nprocs, cap) as u64)?;
        rustix::fs::fcntl_add_seals(&memfd, SEALS)?;
        let bells = (0..nprocs)
            .map(|_| eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK))
            .collect::<rustix::io::Result<Vec<_>>>()?;
        Rings::map(0, nprocs, cap, memfd, bells)
    }

    /// A worker: rank `rank`'s view of the rings main created, from the
    /// descriptors it inherited; why not, if they do not fit `nprocs`.
    pub(super) fn open(
        rank: usize,
        nprocs: usize,
        memfd: OwnedFd,
        bells: Vec<OwnedFd>,
    ) -> Result<Rings, String> {
        let stat = rustix::fs::fstat(&memfd).map_err(|e| format!("fstat: {e}"))?;
        // Main chose the capacity (by whether ranks share cores): its size says.
        let cap = u64::try_from(stat.st_size)
            .ok()
            .and_then(|s| capacity_of(nprocs, s))
            .ok_or_else(|| {
                format!(
                    "the rings' memfd holds {} bytes, not the {} or {} of {nprocs} ranks",
                    stat.st_size,
                    size(nprocs, capacity(nprocs, false)),
                    size(nprocs, capacity(nprocs, true))
                )
            })?;
        let sealed = rustix::fs::fcntl_get_seals(&memfd).is_ok_and(|s| s.contains(SEALS));
        if !sealed || bells.len() != nprocs || rank >= nprocs {
            return Err("the rings' memfd is not sealed, or the doorbells do not fit".into());
        }
        Rings::map(rank, nprocs, cap, memfd, bells).map_err(|e| e.to_string())
    }

    fn map(
        rank: usize,
        nprocs: usize,
        cap: usize,
        memfd: OwnedFd,
        bells: Vec<OwnedFd>,
    ) -> io::Result<Rings> {
        let file = File::from(memfd.try_clone()?);
        let map = MmapOptions::new().len(size(nprocs, cap)).map_raw(&file)?;
        Ok(Rings {
            map,
            rank,
            nprocs,
            cap,
            memfd,
            bells,
            traffic: (0..nprocs).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// The descriptors a worker inherits: the memfd, then every doorbell.
    pub(super) fn descriptors(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        std::iter::once(self.memfd.as_fd()).chain(self.bells.iter().map(AsFd::as_fd))
    }

    /// This rank's doorbell, to poll with the sockets.
    pub(super) fn bell(&self) -> BorrowedFd<'_> {
        self.bells[self.rank].as_fd()
    }

    /// The capacity of each ring.
    #[cfg(test)]
    fn cap(&self) -> usize {
        self.cap
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.map.len());
        // SAFETY: the offset is 8-aligned (page-aligned mapping) and inside
        // the mapping, which lives as long as `self`; the word is only ever
        // accessed atomically, by every process that maps it.
        unsafe { &*self.map.as_mut_ptr().add(offset).cast::<AtomicU64>() }
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.map.len());
        // SAFETY: as for `u64_at`, with a 4-aligned offset.
        unsafe { &*self.map.as_mut_ptr().add(offset).cast::<AtomicU32>() }
    }

    fn ring(&self, from: usize, to: usize) -> usize {
        debug_assert!(from < self.nprocs && to < self.nprocs && from != to);
        self.nprocs * RANK + (from * self.nprocs + to) * (CTRL + self.cap)
    }

    fn head(&self, from: usize, to: usize) -> &AtomicU64 {
        self.u64_at(self.ring(from, to))
    }

    fn socket_frames(&self, from: usize, to: usize) -> &AtomicU64 {
        self.u64_at(self.ring(from, to) + 8)
    }

    fn resume(&self, from: usize, to: usize) -> &AtomicU64 {
        self.u64_at(self.ring(from, to) + 16)
    }

    fn tail(&self, from: usize, to: usize) -> &AtomicU64 {
        self.u64_at(self.ring(from, to) + LINE)
    }

    fn asleep(&self, rank: usize) -> &AtomicU32 {
        self.u32_at(rank * RANK)
    }

    fn waits_on(&self, rank: usize) -> &AtomicU32 {
        self.u32_at(rank * RANK + 64)
    }

    /// Post `index` (0 or 1) of `rank`: [`POST`] bytes, 8-aligned, inside
    /// the mapping for as long as `self` lives.
    pub(super) fn post_at(&self, rank: usize, index: usize) -> *mut u8 {
        let offset = rank * RANK + LINE + index * POST;
        assert!(rank < self.nprocs && index < 2 && offset + POST <= self.map.len());
        // SAFETY: in bounds (asserted) of a mapping that lives as long as `self`.
        unsafe { self.map.as_mut_ptr().add(offset) }
    }

    /// The number of ranks.
    pub(super) fn nprocs(&self) -> usize {
        self.nprocs
    }

    /// This rank.
    pub(super) fn rank(&self) -> usize {
        self.rank
    }

    /// Wakes every other rank that said it sleeps (after a post: any of
    /// them may wait for it), with one fence for all.
    pub(super) fn wake_sleepers(&self) {
        fence(Ordering::SeqCst);
        for rank in (0..self.nprocs).filter(|&r| r != self.rank) {
            self.ring_if_asleep(rank);
        }
    }

    /// Records that this rank waits on `cpu`, and returns the lowest other
    /// rank last seen waiting on it (`cpu`).
    pub(super) fn sharing(&self, cpu: usize) -> Option<usize> {
        let seen = u32::try_from(cpu + 1).unwrap_or(u32::MAX);
        self.waits_on(self.rank).store(seen, Ordering::Relaxed);
        (0..self.nprocs)
            .filter(|&r| r != self.rank)
            .find(|&r| self.waits_on(r).load(Ordering::Relaxed) == seen)
    }

    /// Wakes `rank` if it said it sleeps (one eventfd write per sleep).
    fn wake(&self, rank: usize) {
        // Pairs with the fence in `sleep`: either it sees our indices, or
        // we see its flag.
        fence(Ordering::SeqCst);
        self.ring_if_asleep(rank);
    }

    /// Rings `rank`'s doorbell if it said it sleeps (after a fence).
    fn ring_if_asleep(&self, rank: usize) {
        let flag = self.asleep(rank);
        if flag.load(Ordering::Relaxed) != 0
            && flag
                .compare_exchange(1, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            // A full counter (never, at 2^64 - 2) or a closed descriptor
            // only loses a wake-up the sleeper's poll bound covers.
            let _ = rustix::io::write(&self.bells[rank], &1u64.to_ne_bytes());
        }
    }

    /// Says this rank is about to sleep on its doorbell; the caller then
    /// looks at the rings once more before it polls.
    pub(super) fn sleep(&self) {
        self.asleep(self.rank).store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Says this rank is awake again and clears its doorbell.
    pub(super) fn awake(&self) {
        self.asleep(self.rank).store(0, Ordering::Relaxed);
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.bells[self.rank], &mut buf);
    }

    // ---- producer side: this rank writes the ring to `to` ----

    /// Bytes this rank's ring to `to` has consumed so far (it grows as
    /// `to` reads).
    fn consumed(&self, to: usize) -> u64 {
        self.tail(self.rank, to).load(Ordering::Acquire)
    }

    /// The window of the ring to `to`: an empty ring whose writer is past
    /// it rewinds to its first byte. [`WARM`], growing with the ring's
    /// traffic to a quarter of the ring (module docs).
    fn window(&self, to: usize) -> usize {
        let quarter = self.cap / 4;
        let grown = self.traffic[to].load(Ordering::Relaxed) / GROWTH;
        usize::try_from(grown)
            .unwrap_or(usize::MAX)
            .clamp(WARM.min(quarter), quarter)
    }

    /// Free bytes in the ring to `to`.
    pub(super) fn room(&self, to: usize) -> usize {
        let head = self.head(self.rank, to).load(Ordering::Relaxed);
        self.free(head, self.consumed(to))
    }

    /// Free bytes in a ring whose writer is at `head` and reader at
    /// `consumed` (a corrupt pair of indices leaves none).
    fn free(&self, head: u64, consumed: u64) -> usize {
        self.cap
            .saturating_sub(head.wrapping_sub(consumed) as usize)
    }

    /// Whether `to` has read everything this rank put in its ring.
    pub(super) fn drained(&self, to: usize) -> bool {
        self.consumed(to) == self.head(self.rank, to).load(Ordering::Relaxed)
    }

    /// Copies into the ring to `to` as many bytes of `parts` (skipping the
    /// first `skip`) as fit, publishes them and wakes `to` if it sleeps;
    /// returns how many.
    pub(super) fn write(&self, to: usize, parts: &[&[u8]], skip: usize) -> usize {
        let mut head = self.head(self.rank, to).load(Ordering::Relaxed);
        let consumed = self.consumed(to);
        let cap = self.cap as u64;
        let left = parts
            .iter()
            .map(|p| p.len())
            .sum::<usize>()
            .saturating_sub(skip);
        if head == consumed && head % cap >= self.window(to) as u64 && left as u64 <= head % cap {
            // Empty: rewind to the ring's first byte (module docs). The
            // reader learns it from `resume`, published with the head below;
            // the skipped bytes count as used until it has (room is then
            // what lay behind the head, at least the window):
            // only when what is left to write fits there, or a reader that
            // is busy elsewhere (a worker computing its chunk while main
            // queues its next) would hold the writer up until it reads.
            head = head.next_multiple_of(cap);
            self.resume(self.rank, to).store(head, Ordering::Relaxed);
        }
        let room = self.free(head, consumed);
        let data = self.ring(self.rank, to) + CTRL;
        let (mut at, mut skip, mut written) = (head, skip, 0usize);
        let mut published = head;
        for part in parts {
            if written == room {
                break;
            }
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            let src = &part[skip..];
            skip = 0;
            let n = src.len().min(room - written);
            let mut done = 0;
            while done < n {
                if at - published >= PIECE as u64 {
                    // Published in pieces, so that the reader copies one
                    // while this rank copies the next.
                    self.head(self.rank, to).store(at, Ordering::Release);
                    self.wake(to);
                    published = at;
                }
                let pos = (at % self.cap as u64) as usize;
                let k = (n - done).min(self.cap - pos).min(PIECE);
                // SAFETY: `[pos, pos + k)` lies in this ring's data (k ≤
                // cap - pos) and in the free part of the ring (`written + k ≤
                // room`), which the consumer does not read until the head
                // below is published; `src` is ours, not in the mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        src.as_ptr().add(done),
                        self.map.as_mut_ptr().add(data + pos),
                        k,
                    )
                };
                done += k;
                at += k as u64;
            }
            written += n;
        }
        if at != published {
            self.head(self.rank, to).store(at, Ordering::Release);
            self.wake(to);
        }
        self.traffic[to].fetch_add(written as u64, Ordering::Relaxed);
        written
    }

    /// Counts a frame sent to `to` on the socket (after it was written in
    /// full), so that `to` reads its socket before the ring bytes after it.
    pub(super) fn sent_on_socket(&self, to: usize) {
        self.socket_frames(self.rank, to)
            .fetch_add(1, Ordering::Release);
        self.wake(to);
    }

    // ---- consumer side: this rank reads the ring from `from` ----

    /// What `from` has published so far: its head, then how many frames it
    /// sent on the socket before that (loaded after the head, so no frame
    /// sent before those bytes is missed).
    pub(super) fn published(&self, from: usize) -> (u64, u64) {
        let head = self.head(from, self.rank).load(Ordering::Acquire);
        let sent = self.socket_frames(from, self.rank).load(Ordering::Acquire);
        (head, sent)
    }

    /// Whether the ring from `from` has bytes not yet read.
    #[cfg(test)]
    fn pending(&self, from: usize) -> bool {
        let head = self.head(from, self.rank).load(Ordering::Acquire);
        head != self.tail(from, self.rank).load(Ordering::Relaxed)
    }

    /// Copies bytes of the ring from `from`, up to its published `head`,
    /// into `dst`, frees them and wakes `from` if it sleeps; returns how
    /// many (0: nothing new). A head that is not between the tail and the
    /// tail plus the capacity is a corrupt stream.
    pub(super) fn read(
        &self,
        from: usize,
        head: u64,
        dst: &mut [MaybeUninit<u8>],
    ) -> Result<usize, &'static str> {
        const OUT_OF_RANGE: &str = "a shared-memory ring's indices are out of range";
        let mut tail = self.tail(from, self.rank).load(Ordering::Relaxed);
        // Published before `head` (whose Acquire load came first); a rewind
        // not yet published lies beyond `head`, an old one behind the tail.
        let resume = self.resume(from, self.rank).load(Ordering::Relaxed);
        let rewound = resume > tail && resume <= head;
        if rewound {
            if resume - tail >= self.cap as u64 || !resume.is_multiple_of(self.cap as u64) {
                return Err(OUT_OF_RANGE);
            }
            tail = resume;
        }
        let ready = head.wrapping_sub(tail);
        if ready > self.cap as u64 {
            return Err(OUT_OF_RANGE);
        }
        // At most a piece at a time: the writer reuses it while this rank
        // copies the next.
        let n = dst.len().min(ready as usize).min(PIECE);
        let data = self.ring(from, self.rank) + CTRL;
        let mut done = 0;
        while done < n {
            let pos = ((tail + done as u64) % self.cap as u64) as usize;
            let k = (n - done).min(self.cap - pos);
            // SAFETY: `[pos, pos + k)` lies in the ring's data and in the
            // part the producer published (Acquire load of `head` in
            // `published`) and will not touch until the tail below moves
            // past it; `dst` is ours, not in the mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.map.as_ptr().add(data + pos),
                    dst.as_mut_ptr().add(done).cast::<u8>(),
                    k,
                )
            };
            done += k;
        }
        if n > 0 || rewound {
            self.tail(from, self.rank)
                .store(tail + n as u64, Ordering::Release);
            self.wake(from);
        }
        Ok(n)
    }
}

/// Ranks 0 and 1 of one pool of `nprocs`, in this process (tests).
#[cfg(test)]
pub(super) fn pair(nprocs: usize) -> (Rings, Rings) {
    let a = Rings::create(nprocs, false).unwrap();
    let memfd = a.memfd.try_clone().unwrap();
    let bells = a.bells.iter().map(|b| b.try_clone().unwrap()).collect();
    let b = Rings::open(1, nprocs, memfd, bells).unwrap();
    (a, b)
}

/// `bytes` as a buffer to be written (every byte stays initialized: only
/// initialized bytes are written into it).
pub(super) fn as_uninit(bytes: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; the only writer of
    // the view is `Rings::read`, which writes initialized bytes.
    unsafe { &mut *(bytes as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
