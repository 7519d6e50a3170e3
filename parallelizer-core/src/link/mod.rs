//! The region protocol for backends whose ranks exchange messages, written
//! once over a small [`Transport`] trait: threads, processes and user
//! backends all use it (MPI has native collectives and its own).
//!
//! A backend gives each rank of a region a transport — "move this packet to
//! rank k", "give me the next packet for this rank" — and wraps it in a
//! [`LinkRank`], the rank's handle. The handle then does the rest:
//!
//! - **Messages**: every data packet carries its call's [`Tag`] (operation
//!   and sequence number) and the sender's type name; a rank that receives
//!   the wrong operation fails at once with `ContractViolation` naming both
//!   ranks and both calls, and a wrong type is `Codec` naming both types.
//! - **Groups**: every packet carries the id of the group whose call sent
//!   it (0 for the region's own calls; see `subgroup` and `split`), and a
//!   rank keeps one set of mailboxes per group, so a group's calls never
//!   take another group's messages ([`Parallelizer::send_msg_in`],
//!   [`Parallelizer::recv_msg_in`]).
//! - **Failure**: a rank whose task fails or panics tells every other rank
//!   ([`Kind::Abort`]); each blocked rank is released with `Aborted`.
//! - **Reports**: every worker ends the region with a [`Kind::Done`] report
//!   to main; main ends it once every worker has reported or is gone, and
//!   returns [`settle`](crate::backend::settle)'s result.
//! - **Waits**: a rank blocked for longer than [`Limits::patience`] tells
//!   main what it waits for; main declares `Deadlock` when a wait can never
//!   end (a cycle of waits, or a wait for a finished rank) and `Timeout` when
//!   the region's deadline passes (after telling the ranks, where sends can
//!   block: [`Limits::settle`]), and releases every rank.
//!
//! [`Tag`]: crate::backend::Tag
//! [`Parallelizer::send_msg_in`]: crate::Parallelizer::send_msg_in
//! [`Parallelizer::recv_msg_in`]: crate::Parallelizer::recv_msg_in

mod board;
mod channels;
mod exchange;
mod gather;
mod heap_board;
mod landing;
mod lend;
mod mailbox;
mod packet;
mod part;
mod plain;
mod push;
mod rank;
mod relay;
mod remote;
mod spawn;
mod spread;
#[cfg(test)]
mod tests;
mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::plain::PodType;
use crate::segment::SharedMemory;

pub(crate) use board::stamp_of;
pub use board::{Board, POST_BYTES, Post, PostCell, type_code};
pub use channels::Channels;
pub use landing::Landing;
pub use packet::{Kind, Packet};
pub use rank::{Finish, LinkRank};
pub use spawn::run_on_threads;

#[cfg(target_os = "linux")]
pub(crate) use remote::refuse_on_this_thread;

/// One rank's connection to the other ranks of a region: what a backend
/// built on the region protocol implements.
///
/// `send` must not wait for the receiver to take the packet (buffer it, or
/// keep reading while it writes); `recv` returns the next packet for this
/// rank from any rank. Both are called from the rank's own thread.
pub trait Transport: Send + Sync + 'static {
    /// Hands `packet` to rank `to`.
    fn send(&self, to: usize, packet: Packet) -> Result<()>;

    /// Hands the same `packet` to every rank of `to` (main's broadcast).
    /// The default makes every rank's copy ([`Msg::duplicate`]), then sends
    /// them: a rank of this process that drops its copy at once frees it
    /// into the sender's heap, and while the sender still allocated the next
    /// copies the two took turns at that heap's lock (a `Vec<String>` of 1e5
    /// on `threads:4`: 29-34 ms a broadcast, against 9.8-14 ms copies first,
    /// as long as the copies alone). A transport that can share one copy
    /// among the receivers overrides it (processes: one memfd for every
    /// worker).
    ///
    /// [`Msg::duplicate`]: crate::backend::Msg::duplicate
    fn send_all(&self, to: &[usize], packet: &Packet) -> Result<()> {
        let bodies = to
            .iter()
            .map(|_| packet.body().duplicate())
            .collect::<Result<Vec<_>>>()?;
        for (&rank, body) in to.iter().zip(bodies) {
            self.send(
                rank,
                Packet::from_parts(packet.kind(), packet.tag(), packet.region(), body)
                    .in_group(packet.group()),
            )?;
        }
        Ok(())
    }

    /// The next event for this rank, waiting until `until` (`None`: until
    /// one comes); `Ok(None)` when `until` passed first.
    fn recv(&self, until: Option<Instant>) -> Result<Option<Event>>;

    /// Whether the ranks of this transport live in this process and its
    /// packets reach them as they are (values, never encoded): then the
    /// plain-data calls may lend a buffer to the receiving ranks, which
    /// copy straight out of it. The default is `false`.
    fn shares_memory(&self) -> bool {
        false
    }

    /// Whether every rank of this transport is a process of this machine
    /// that may read another's memory by process id and address (Linux
    /// cross-memory attach, `process_vm_readv`): then the plain-data calls
    /// lend large buffers across processes, and the receivers copy straight
    /// out of the sender's memory. The default is `false`.
    fn reads_peer_memory(&self) -> bool {
        false
    }

    /// This rank's next waits are for replies expected within `within` (the
    /// borrowers' copies of a lent buffer, at most 2 ms): a transport that
    /// sleeps while it waits may rather spin until then, or, where its
    /// ranks share cores, sleep at once rather than take turns on the core
    /// a borrower copies on. The default does nothing.
    fn expect_replies(&self, within: Duration) {
        let _ = within;
    }

    /// A receiver was not allowed to read this rank's memory (the system
    /// forbids it): [`reads_peer_memory`](Self::reads_peer_memory) should
    /// say `false` from now on. The default does nothing.
    fn peer_memory_refused(&self) {}

    /// Hands rank `to` a data packet of `tag` in group `group` of region
    /// `region` whose body is the plain data `bytes` of type `ty`. The
    /// default copies them into a message ([`send`](Self::send)); a
    /// transport that has written them out when `send` returns (processes)
    /// sends them from `bytes` as they are.
    fn send_plain(
        &self,
        to: usize,
        (region, group, tag): (u64, u64, Tag),
        ty: PodType,
        bytes: &[u8],
    ) -> Result<()> {
        let packet = Packet::data(region, tag, Msg::plain_copy(ty, bytes)).in_group(group);
        self.send(to, packet)
    }

    /// Posts `landing`: the next data packet from `landing.from()` that
    /// [fits](Landing::fits) it, plain data of exactly its length, is to be
    /// written straight into its buffer ([`Landing::write_at`], then
    /// [`Landing::landed`]) and delivered as [`Msg::from_shared`] of the
    /// landing. Whether it was posted; the default posts nothing.
    /// The buffer is the caller's until [`unpost`](Self::unpost) returns.
    fn post(&self, landing: &Arc<Landing>) -> bool {
        let _ = landing;
        false
    }

    /// Withdraws a posted `landing`: from then on nothing is written into
    /// its buffer (a packet half landed goes on into a buffer of its own).
    fn unpost(&self, landing: &Arc<Landing>) {
        let _ = landing;
    }

    /// Memory where each rank posts a few bytes that every other rank
    /// reads ([`Board`]): the small all-to-all collectives (a barrier; a
    /// reduction or an all-gather of a number) then read one post from each peer instead of
    /// exchanging messages. `None` (the default): they exchange messages.
    /// A transport with a board also overrides
    /// [`recv_or_posted`](Self::recv_or_posted).
    fn board(&self) -> Option<&dyn Board> {
        None
    }

    /// [`recv`](Self::recv), returning `Ok(None)` also as soon as every
    /// other rank's post stamped `stamp` is on the [`board`](Self::board)
    /// (a post wakes a rank that sleeps in here). The default is `recv`.
    fn recv_or_posted(&self, until: Option<Instant>, stamp: u64) -> Result<Option<Event>> {
        let _ = stamp;
        self.recv(until)
    }

    /// The memory that every rank this transport reaches can address, for
    /// shared arrays; `None` (the default) when there is none, and then
    /// shared arrays are refused with [`Error::Unsupported`]. [`Channels`]
    /// connects threads of one process: [`HEAP`](crate::backend::HEAP).
    fn shared_memory(&self) -> Option<&dyn SharedMemory> {
        None
    }
}

/// What a transport delivers.
#[derive(Debug)]
pub enum Event {
    /// A packet from rank `from`.
    Packet {
        /// The sender.
        from: usize,
        /// The packet.
        packet: Packet,
    },
    /// Rank `rank` can no longer be heard (it died, or its stream broke):
    /// `error` says how, e.g. `Error::WorkerDied`.
    Gone {
        /// The rank.
        rank: usize,
        /// What happened to it.
        error: Error,
    },
}

/// The time limits of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The deadline of the whole region (`Config::timeout`), from its start.
    pub timeout: Option<Duration>,
    /// How long main waits for the other ranks to finish after a failure
    /// before it gives up on them.
    pub grace: Duration,
    /// How long a rank waits before it reports its wait to main (deadlock
    /// detection costs nothing before that).
    pub patience: Duration,
    /// How long after the deadline main names the late rank. At the
    /// deadline main tells every rank still running ([`Kind::Expired`]): a
    /// rank whose transport blocks in a send (it cannot report that wait)
    /// gives up then and reports, so that the rank it waited for, not it,
    /// is named. Zero: named at the deadline, nobody told.
    pub settle: Duration,
}

impl Limits {
    /// The limits `config` asks for: its timeout, a grace of 2 s, a
    /// patience of 100 ms and no settling time.
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            timeout: config.timeout,
            grace: Duration::from_secs(2),
            patience: Duration::from_millis(100),
            settle: Duration::ZERO,
        }
    }

    /// The deadline of a region that begins now, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }
}

/// A rank that receives passed no buffer, or main no data (a plain-data
/// call's contract: `plain.rs`, `gather.rs`).
fn missing(op: crate::op::Op, what: &str) -> Error {
    Error::ContractViolation(format!("{op}: this rank passed no {what}"))
}

/// Rank `id` of `nprocs` in region 1 on `transport`, with no deadline, a
/// grace of 100 ms and `patience`: the unit tests' ranks.
#[cfg(test)]
pub(crate) fn test_rank<T: Transport>(
    id: usize,
    nprocs: usize,
    patience: Duration,
    transport: T,
) -> LinkRank<T> {
    let limits = Limits {
        timeout: None,
        grace: Duration::from_millis(100),
        patience,
        settle: Duration::ZERO,
    };
    let core = crate::parallelizer::Core::new(Config::new("processes"));
    LinkRank::new(&core, id, nprocs, 1, limits, transport)
}
