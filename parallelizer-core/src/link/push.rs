//! A lender's hand in a large copy into fresh memory across processes.
//!
//! A borrower copies a loan out of the lender's memory while the lender
//! waits; into a buffer that is already there, the borrower spreads the
//! copy over the free cores (`spread.rs`), but not into fresh memory (a
//! generic call's result), whose page faults two of its threads made slow
//! at times. Here the waiting lender's core takes a part instead: a
//! borrower with a large copy into a buffer it owns sends its lender a
//! [`PushHere`] with the address of the second half, copies the first half
//! itself while the lender writes the second with `process_vm_writev`, and
//! waits for the lender's [`Pushed`] before it checks the loan and
//! acknowledges. The lender offers this only where it waits for a single
//! borrower (`Remote::pushes`).
//!
//! The lender writes into the borrower's memory, so the borrower must not
//! free that memory while the lender may still write: a borrower that
//! leaves before the lender's answer (released by a failure elsewhere, a
//! deadline) leaks its buffer ([`PlainBuf::leak`]) rather than free it. An
//! error is then the cost of the memory of one copy, never a write into
//! memory in other use.
//!
//! Measured by a C probe on the 2-core test VM (80 MB from a `malloc`ed
//! buffer into fresh huge-page memory of another process): 22-32 ms with
//! the lender pushing half against 42-50 ms with the borrower pulling all,
//! and none of the slow states that two threads of one process faulting
//! in fresh memory fell into.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::parallelizer::Parallelizer;
use crate::plain::PlainBuf;

use super::Transport;
use super::rank::LinkRank;
use super::remote::{CopyError, Remote, write};
use super::spread::Spread;

/// Copies of fewer bytes are not split with the lender: two messages and a
/// second core must be small beside the copy (about 1 ms per 8 MB here).
const PUSH_FROM: usize = 16 << 20;

/// The halves meet on a multiple of this in the destination (a huge page),
/// so the two processes never fault in the same one.
const ALIGN: usize = 2 << 20;

/// A borrower's request: write `len` bytes of the loan, from the lender's
/// address `src`, to `dst` in process `pid`.
#[derive(Debug, Serialize, Deserialize)]
struct PushHere {
    pid: u32,
    src: u64,
    dst: u64,
    len: u64,
}

/// The lender's answer: written, or why not (the borrower then copies that
/// part itself).
#[derive(Debug, Serialize, Deserialize)]
struct Pushed {
    failed: Option<String>,
}

/// Where a copy of `len` bytes to `dst` is split between borrower and
/// lender: the first huge-page boundary at or after its middle, if both
/// sides then have bytes to copy.
fn split(dst: usize, len: usize) -> Option<usize> {
    let middle = dst.checked_add(len / 2)?;
    let at = middle.checked_next_multiple_of(ALIGN)? - dst;
    (at > 0 && at < len).then_some(at)
}

/// Whether a borrower asks for the lender's help with the copy of `note`
/// into `buf`: a large copy on one thread, offered by the lender, into
/// memory the borrower could give up.
pub(super) fn asks(note: &Remote, buf: &dyn PlainBuf, spread: Spread) -> bool {
    note.pushes() && spread == Spread::ONE && note.len() >= PUSH_FROM && buf.can_leak()
}

impl<T: Transport> LinkRank<T> {
    /// The borrower's copy of `note` into `dst` (of its length) with the
    /// lender `from`'s help. `Err`: the lender's answer never came, and it
    /// may still be writing into `dst` (the caller leaks it); `Ok` holds the
    /// copy's own outcome, after which the lender writes no more.
    pub(super) fn copy_pushed(
        &self,
        note: &Remote,
        dst: &mut [u8],
        from: usize,
        tag: Tag,
    ) -> Result<std::result::Result<(), CopyError>> {
        let at = split(dst.as_ptr() as usize, dst.len()).filter(|_| dst.len() == note.len());
        let Some(at) = at else {
            return Ok(note.copy_to(dst, Spread::ONE));
        };
        let ask = PushHere {
            pid: std::process::id(),
            src: note.addr_of(at),
            dst: dst[at..].as_ptr() as u64,
            len: (dst.len() - at) as u64,
        };
        if let Err(e) = self.send_msg(Msg::new(ask), from, tag) {
            // Nothing was asked: nobody writes into `dst`.
            return Ok(Err(CopyError::Failed(e)));
        }
        let (mine, theirs) = dst.split_at_mut(at);
        let copied = note.copy_part(0, mine, Spread::ONE);
        let answer = self.recv_raw(from, tag)?;
        if answer.type_name() != Some(std::any::type_name::<Pushed>()) {
            return Err(Error::Protocol(format!(
                "{}: rank {from} answered a request to push part of its loan with {}",
                tag.op(),
                answer.type_name().unwrap_or("an untyped message")
            )));
        }
        // The lender wrote no more after its answer, whatever it says.
        let copied = match answer.into_value::<Pushed>() {
            Ok(Pushed { failed: None }) => copied,
            Ok(Pushed { failed: Some(_) }) | Err(_) => {
                copied.and_then(|()| note.copy_part(at, theirs, Spread::ONE))
            }
        };
        Ok(copied.and_then(|()| note.check_live()))
    }

    /// The lender's end: if `msg` from borrower `to` asks it to push part
    /// of the loan `lent`, writes it, answers, and returns the borrower's
    /// next message; `msg` itself otherwise.
    pub(super) fn serve_push(&self, msg: Msg, lent: &[u8], to: usize, tag: Tag) -> Result<Msg> {
        if msg.type_name() != Some(std::any::type_name::<PushHere>()) {
            return Ok(msg);
        }
        let failed = msg
            .into_value::<PushHere>()
            .and_then(|ask| push(&ask, lent))
            .err()
            .map(|e| e.to_string());
        self.send_msg(Msg::new(Pushed { failed }), to, tag)?;
        self.recv_raw(to, tag)
    }
}

/// Writes what `ask` asks for, if it lies inside `lent`.
fn push(ask: &PushHere, lent: &[u8]) -> Result<()> {
    let start = lent.as_ptr() as u64;
    let from = ask.src.checked_sub(start);
    let range = from.and_then(|f| Some((f as usize, (f.checked_add(ask.len)?) as usize)));
    let Some(src) = range.and_then(|(a, b)| lent.get(a..b)) else {
        return Err(Error::Protocol(format!(
            "a request to push {} bytes from {:#x}, outside the loan of {} bytes at {start:#x}",
            ask.len,
            ask.src,
            lent.len()
        )));
    };
    write(ask.pid, ask.dst, src).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::Config;
    use crate::link::remote::Ticket;
    use crate::link::{Event, Limits, Packet};
    use crate::op::Op;
    use crate::parallelizer::Core;
    use crate::plain::PodType;

    /// A borrower's view of a lender in this same process: hands it the
    /// events queued here, keeps what it sends.
    #[derive(Default)]
    struct Lender {
        events: Mutex<VecDeque<Event>>,
        sent: Mutex<Vec<Packet>>,
    }

    impl Transport for Lender {
        fn send(&self, _to: usize, packet: Packet) -> Result<()> {
            self.sent.lock().unwrap().push(packet);
            Ok(())
        }

        fn recv(&self, until: Option<Instant>) -> Result<Option<Event>> {
            if let Some(event) = self.events.lock().unwrap().pop_front() {
                return Ok(Some(event));
            }
            if let Some(until) = until {
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
            }
            Ok(None)
        }

        fn reads_peer_memory(&self) -> bool {
            true
        }
    }

    /// Rank 1 of 2, taking a broadcast from a lender that answers with
    /// `answer`; returns what it took, the result, and what it sent.
    fn borrow(answer: Event) -> (Vec<f64>, Result<()>, Vec<Packet>) {
        let limits = Limits {
            timeout: None,
            grace: Duration::from_millis(100),
            patience: Duration::from_secs(10),
        };
        let core = Core::new(Config::new("processes"));
        let rank = LinkRank::new(&core, 1, 2, 1, limits, Lender::default());
        rank.transport().events.lock().unwrap().push_back(answer);
        let data: Vec<f64> = (0..(PUSH_FROM / 8 + 5)).map(|i| i as f64).collect();
        let ty = PodType::of::<f64>();
        let ticket = Ticket::open(bytemuck::cast_slice(&data)).unwrap();
        let note = ticket.note(0, data.len() * 8, ty, true);
        let tag = Tag::new(Op::Broadcast, 1);
        let mut buf: Vec<f64> = Vec::new();
        let took = rank.take_msg(note, 0, tag, ty, &mut buf);
        if took.is_ok() {
            assert_eq!(buf, data);
        }
        let sent = std::mem::take(&mut *rank.transport().sent.lock().unwrap());
        (buf, took, sent)
    }

    #[test]
    fn a_borrower_asks_for_the_second_half_and_copies_it_when_refused() {
        let tag = Tag::new(Op::Broadcast, 1);
        let refusal = Msg::new(Pushed {
            failed: Some("not today".into()),
        });
        let answer = Event::Packet {
            from: 0,
            packet: Packet::data(1, tag, refusal),
        };
        let (buf, took, sent) = borrow(answer);
        took.unwrap();
        assert_eq!(buf.len(), PUSH_FROM / 8 + 5);
        // The request for the half on a huge-page boundary, then the ack.
        assert_eq!(sent.len(), 2);
        let ask: PushHere = sent[0].body().duplicate().unwrap().into_value().unwrap();
        let at = split(buf.as_ptr() as usize, buf.len() * 8).unwrap();
        assert_eq!(ask.dst, buf.as_ptr() as u64 + at as u64);
        assert_eq!(ask.len as usize, buf.len() * 8 - at);
        assert_eq!(ask.pid, std::process::id());
    }

    #[test]
    fn a_borrower_left_without_an_answer_gives_its_buffer_up() {
        let gone = Event::Gone {
            rank: 0,
            error: Error::WorkerDied {
                rank: 0,
                status: "killed (test)".into(),
            },
        };
        let (buf, took, sent) = borrow(gone);
        assert!(took.is_err());
        // Leaked, not freed: the lender might still have been writing.
        assert!(buf.is_empty() && buf.capacity() == 0);
        assert_eq!(sent.len(), 1, "only the request; no ack");
    }

    #[test]
    fn halves_meet_on_a_huge_page_boundary_inside_the_copy() {
        let len = 40 << 20;
        assert_eq!(split(0, len), Some(20 << 20));
        assert_eq!(split(4096, len), Some((22 << 20) - 4096));
        // Where the boundary after the middle is the end, nobody helps.
        assert_eq!(split(1, 2), None);
        assert_eq!(split(ALIGN - 1, 2), Some(1));
        assert_eq!(split(usize::MAX - 4, 8), None);
    }

    #[test]
    fn a_push_writes_only_what_lies_inside_the_loan() {
        let lent: Vec<u8> = (0..=255).collect();
        let mut dst = vec![0u8; 64];
        let start = lent.as_ptr() as u64;
        let ask = |src: u64, len: u64, dst: &mut [u8]| PushHere {
            pid: std::process::id(),
            src,
            dst: dst.as_mut_ptr() as u64,
            len,
        };
        push(&ask(start + 100, 64, &mut dst), &lent).unwrap();
        assert_eq!(dst[..], lent[100..164]);
        for (src, len) in [(start + 200, 64), (start - 1, 8), (start, u64::MAX)] {
            let e = push(&ask(src, len, &mut dst), &lent).unwrap_err();
            assert!(e.to_string().contains("outside the loan"), "{e}");
        }
    }
}
