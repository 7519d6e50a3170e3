//! `Channels`: a transport between threads of one process, over crossbeam
//! channels; messages move as values, never serialized. Its board
//! (`heap_board`) holds the posts of a barrier or a reduction of a number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use crate::error::Result;

use super::heap_board::{HeapBoard, Woken};
use super::{Board, Event, Packet, Transport};
use crate::segment::{HEAP, SharedMemory};

/// How many times a receive yields before it parks (see `recv`).
const SPINS: usize = 64;

/// How long a wait for posts polls the board before it sleeps, where every
/// rank has a core: the ranks of a barrier or a reduction of a number
/// arrive within microseconds of each other when their work is even, and
/// a wake-up costs tens of them on these VMs.
const POST_SPIN: Duration = Duration::from_micros(50);

/// One rank's end of a mesh of channels: a sender to every rank's inbox and
/// its own inbox. Packets move as they are (a `Vec` is moved, not copied).
///
/// ```
/// use parallelizer_core::{Op, backend::{Channels, Event, Msg, Packet, Tag, Transport}};
/// let mut mesh = Channels::mesh(2);
/// let (b, a) = (mesh.pop().unwrap(), mesh.pop().unwrap());
/// a.send(1, Packet::data(0, Tag::new(Op::Broadcast, 0), Msg::new(5u8))).unwrap();
/// match b.recv(None).unwrap() {
///     Some(Event::Packet { from: 0, packet }) => assert_eq!(packet.into_body().into_value::<u8>().unwrap(), 5),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
pub struct Channels {
    id: usize,
    to: Vec<Sender<(usize, Packet)>>,
    inbox: Receiver<(usize, Packet)>,
    /// The mesh's posts, in this process's memory.
    board: HeapBoard,
    /// Whether every rank can have a core, so that a lender may yield
    /// rather than park while its borrowers copy.
    uncrowded: bool,
    /// When the mesh was made: the origin of `spin_until`.
    epoch: Instant,
    /// Until then (nanoseconds after `epoch`; 0: none) waits yield rather
    /// than park: a reply is expected. An atomic, so that every receive
    /// reads it without a lock.
    spin_until: AtomicU64,
}

impl Channels {
    /// The ends of a mesh of `nprocs` ranks, in rank order.
    pub fn mesh(nprocs: usize) -> Vec<Channels> {
        let (senders, inboxes): (Vec<_>, Vec<_>) = (0..nprocs).map(|_| unbounded()).unzip();
        let uncrowded = nprocs <= crate::runtime::cores();
        let epoch = Instant::now();
        inboxes
            .into_iter()
            .zip(HeapBoard::mesh(nprocs))
            .enumerate()
            .map(|(id, (inbox, board))| Channels {
                id,
                to: senders.clone(),
                inbox,
                board,
                uncrowded,
                epoch,
                spin_until: AtomicU64::new(0),
            })
            .collect()
    }
}

impl Transport for Channels {
    /// The ranks are threads of one process.
    fn shared_memory(&self) -> Option<&dyn SharedMemory> {
        Some(&HEAP)
    }

    fn send(&self, to: usize, packet: Packet) -> Result<()> {
        // Every inbox lives as long as its rank's handle; a packet for a
        // rank that has finished is dropped, as a socket to it would.
        let _ = self.to[to].send((self.id, packet));
        Ok(())
    }

    fn shares_memory(&self) -> bool {
        true
    }

    /// Waits until `within` from now yield rather than park, while every
    /// rank can have a core: waking a parked thread costs tens of
    /// microseconds on these VMs (a 1 MiB `send_slice` / `receive_into`
    /// ping-pong took 35 or, when the lender had parked, 190 µs one way;
    /// with this, 68–70 µs, now and then 35).
    fn expect_replies(&self, within: Duration) {
        if self.uncrowded {
            let until = (Instant::now() + within).duration_since(self.epoch);
            let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
            self.spin_until.store(nanos, Ordering::Relaxed);
        }
    }

    fn recv(&self, until: Option<Instant>) -> Result<Option<Event>> {
        // A short wait that yields the core before parking the thread:
        // ranks that answer each other back to back (a collective after a
        // barrier) then hand over in about a microsecond instead of a
        // futex wake-up each, and on an oversubscribed machine the yield
        // lets the sender run.
        let spin_until = match self.spin_until.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.epoch + Duration::from_nanos(nanos)),
        };
        let mut spins = 0;
        loop {
            if let Ok((from, packet)) = self.inbox.try_recv() {
                return Ok(Some(Event::Packet { from, packet }));
            }
            let now = Instant::now();
            if until.is_some_and(|t| now >= t) {
                return Ok(None);
            }
            spins += 1;
            if spins >= SPINS && spin_until.is_none_or(|t| now >= t) {
                break;
            }
            std::thread::yield_now();
        }
        let got = match until {
            None => self
                .inbox
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(t) => self.inbox.recv_deadline(t),
        };
        Ok(match got {
            Ok((from, packet)) => Some(Event::Packet { from, packet }),
            // This end holds a sender to its own inbox, so it never
            // disconnects; only the deadline ends a wait without a packet.
            Err(_) => None,
        })
    }

    /// Posts in this process's memory, one cache line each.
    fn board(&self) -> Option<&dyn Board> {
        Some(&self.board)
    }

    fn recv_or_posted(&self, until: Option<Instant>, stamp: u64) -> Result<Option<Event>> {
        // Polls while every rank has a core (and no thread computes
        // alongside this one, needing it); yields where they share.
        let poll_until = (self.uncrowded && !crate::runtime::computing_alongside())
            .then(|| Instant::now() + POST_SPIN);
        let mut spins = 0;
        loop {
            if let Ok((from, packet)) = self.inbox.try_recv() {
                return Ok(Some(Event::Packet { from, packet }));
            }
            if self.board.all_posted(stamp) {
                return Ok(None);
            }
            let now = Instant::now();
            if until.is_some_and(|t| now >= t) {
                return Ok(None);
            }
            if poll_until.is_some_and(|t| now < t) {
                std::hint::spin_loop();
            } else if spins < SPINS {
                spins += 1;
                std::thread::yield_now();
            } else {
                break;
            }
        }
        Ok(match self.board.wait(&self.inbox, stamp, until) {
            Woken::Message((from, packet)) => Some(Event::Packet { from, packet }),
            Woken::Rung | Woken::Deadline => None,
        })
    }
}
