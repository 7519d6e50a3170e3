//! A waiting lender's hand in its borrower's copy across processes.
//!
//! A borrower copies a loan out of the lender's memory while the lender
//! waits. Here the lender's core takes a part: the borrower sends it a
//! [`PushHere`] with an address in its own buffer, copies the rest itself
//! while the lender writes there with `process_vm_writev`, and takes the
//! lender's [`Pushed`] before it checks the loan and acknowledges. A lender
//! offers this (`Remote::pushes`) where it waits for one borrower with
//! nothing else to do: main's broadcast or scatter to a single worker (the
//! worker asks for all but about the first quarter of its copy: [`split`]),
//! a worker's part of a gather (main asks for the whole part while it
//! copies its own, or as a worker would when it has none). Copies of [`PUSH_FROM`] bytes or
//! more, into buffers the borrower could give up (not the caller's slice
//! of a `broadcast_into`, which spreads over the free cores instead:
//! `spread.rs`).
//!
//! The borrower faults in the pages it asks for before it asks
//! (`pages::populate`): on the test VM, whose host takes back the memory
//! the guest frees (see `spread.rs`), a `process_vm_writev` that faulted
//! in fresh pages of the other process itself fell, in about a third of
//! the rows measured, into states where it moved 0.8 GB/s instead of 5 (a
//! generic 1e7 broadcast on `processes:2`: 45-52 ms against 23 pulling all,
//! 13 otherwise; a generic gather 23 ms against 12, a `gather_pod` 55
//! against 22). Populated first, no such state was seen: on
//! `processes:2`, 1e7 f64, medians of 9, runs alternated with a build that
//! pulls all, a generic broadcast took 17.4-23.7 ms against 24.9-27.7, a
//! generic scatter 8.9-12.8 against 12.7-14.5; a generic gather 8.9-9.7
//! against 11.4-12.7 (a build from before this module).
//!
//! The lender writes into the borrower's memory, so the borrower must not
//! free that memory while the lender may still write: a borrower whose
//! answer never comes (the lender died, or a failure elsewhere released
//! the borrower) abandons its buffer ([`PlainBuf::abandon`]) rather than
//! free it. An error is then the cost of the memory of one copy, never a
//! write into memory in other use.
//!
//! [`PlainBuf::abandon`]: crate::plain::PlainBuf::abandon

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::parallelizer::Parallelizer;

use super::Transport;
use super::rank::LinkRank;
use super::remote::{CopyError, Remote, write};
use super::spread::Spread;

/// Copies of fewer bytes are made by the borrower alone: two messages must
/// be small beside the copy (about 250 µs per 2 MiB here). Measured on
/// `processes:2`, 1e6 f64 (8 MB; gathers' parts of 4 MB), against a
/// threshold of 16 MiB: `gather_into` 0.7-1.1 ms against 1.5-1.8.
const PUSH_FROM: usize = 2 << 20;

/// A copy split between borrower and lender is split on a multiple of
/// this in the destination (a huge page), so that the two processes never
/// fault in the same one.
const ALIGN: usize = crate::pages::HUGE_PAGE;

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
/// lender: the first huge-page boundary at or after a quarter of it, if
/// both sides then have bytes to copy. The borrower takes the smaller part:
/// it faults in the lender's part before it asks, then faults in and copies
/// its own, while the lender only copies. Measured on `processes:2`, a
/// generic 1e7 broadcast (medians of 9, alternated): 13.7-18.8 ms with a
/// quarter, 15.4-17.2 with a sixth, 15.5-21.6 with a third, 17.9-25.6 with
/// half; scatters alike (7.4-9.8 ms against 9.3-14.1 with half).
pub(super) fn split(dst: usize, len: usize) -> Option<usize> {
    let quarter = dst.checked_add(len / 4)?;
    let at = quarter.checked_next_multiple_of(ALIGN)? - dst;
    (at > 0 && at < len).then_some(at)
}

/// Whether a borrower asks the rank that lent `note` to write (part of)
/// it, into a buffer that can (`can_abandon`) or cannot be given up.
pub(super) fn asks(note: &Remote, can_abandon: bool) -> bool {
    note.pushes() && note.len() >= PUSH_FROM && can_abandon
}

impl<T: Transport> LinkRank<T> {
    /// A borrower's copy of `note` into `dst` (of its length) with the
    /// lender `from`'s help: the first part here, the rest by the lender
    /// ([`split`]).
    /// Errors as [`finish_pushed`](Self::finish_pushed).
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
        if let Err(e) = self.ask_push(note, at, &dst[at..], from, tag) {
            // Nothing was asked: nobody writes into `dst`.
            return Ok(Err(CopyError::Failed(e)));
        }
        self.finish_pushed(note, at, dst, from, tag)
    }

    /// Asks the lender `from` of `note` to write the lent bytes from byte
    /// `at` on into `dst` (of their length), whose pages are faulted in
    /// here first (`pages::populate`).
    pub(super) fn ask_push(
        &self,
        note: &Remote,
        at: usize,
        dst: &[u8],
        from: usize,
        tag: Tag,
    ) -> Result<()> {
        crate::pages::populate(dst);
        let ask = PushHere {
            pid: std::process::id(),
            src: note.addr_of(at),
            dst: dst.as_ptr() as u64,
            len: dst.len() as u64,
        };
        self.send_msg(Msg::new(ask), from, tag)
    }

    /// After [`ask_push`](Self::ask_push)`(note, at, &dst[at..])`: copies
    /// `dst[..at]` here, then takes the lender's answer and copies the rest
    /// too if it did not write it. `Err`: the answer never came, and the
    /// lender may still be writing into `dst` (the caller abandons it);
    /// `Ok` holds the copy's own outcome, after which it writes no more.
    pub(super) fn finish_pushed(
        &self,
        note: &Remote,
        at: usize,
        dst: &mut [u8],
        from: usize,
        tag: Tag,
    ) -> Result<std::result::Result<(), CopyError>> {
        let (mine, theirs) = dst.split_at_mut(at);
        let copied = note.copy_part(0, mine, Spread::ONE);
        let pushed = self.await_push(from, tag)?;
        if pushed && at == 0 {
            // Nothing was read here: nothing to check.
            return Ok(Ok(()));
        }
        let copied = match pushed {
            true => copied,
            false => copied.and_then(|()| note.copy_part(at, theirs, Spread::ONE)),
        };
        Ok(copied.and_then(|()| note.check_live()))
    }

    /// The answer of the lender `from` to [`ask_push`](Self::ask_push):
    /// whether it wrote (if not, the borrower copies that part itself).
    /// After `Ok` it writes no more; after `Err` it may still be writing.
    pub(super) fn await_push(&self, from: usize, tag: Tag) -> Result<bool> {
        let answer = self.recv_raw(from, tag)?;
        if answer.type_name() != Some(std::any::type_name::<Pushed>()) {
            return Err(Error::Protocol(format!(
                "{}: rank {from} answered a request to push part of its loan with {}",
                tag.op(),
                answer.type_name().unwrap_or("an untyped message")
            )));
        }
        Ok(matches!(
            answer.into_value::<Pushed>(),
            Ok(Pushed { failed: None })
        ))
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
    use std::time::Duration;

    use super::*;
    use crate::link::remote::Ticket;
    use crate::link::tests::Script;
    use crate::link::{Event, Packet, test_rank};
    use crate::native::NativePod;
    use crate::op::Op;
    use crate::plain::PodType;

    /// Rank `id` of 2 in region 1, its peer played by a [`Script`].
    fn rank_of_two(id: usize) -> LinkRank<Script> {
        // Patient: a wait report to main would be one more packet sent.
        test_rank(id, 2, Duration::from_secs(10), Script::default())
    }

    /// Values to lend, large enough that a huge-page boundary lies past a
    /// quarter of them.
    fn lent_values() -> Vec<f64> {
        (0..(3 * PUSH_FROM / 8 + 5)).map(|i| i as f64).collect()
    }

    /// Main of 2 ranks gathering with its own part (`own`, empty or not)
    /// a worker's lent part, the worker answering main's request with
    /// `answer`; returns what main gathered, the result, and what it sent.
    fn gather(own: &[f64], answer: Event) -> (Vec<f64>, Vec<f64>, Result<()>, Vec<Packet>) {
        let main = rank_of_two(0);
        let part = lent_values();
        let ty = PodType::of::<f64>();
        let ticket = Ticket::open(bytemuck::cast_slice(&part)).unwrap();
        let tag = Tag::new(Op::Gather, 1);
        let note = ticket.note(0, part.len() * 8, ty, true);
        let events = [Packet::data(1, tag, note)].map(|packet| Event::Packet { from: 1, packet });
        main.transport().events.lock().unwrap().extend(events);
        main.transport().events.lock().unwrap().push_back(answer);
        let mut all: Vec<f64> = Vec::new();
        let send = bytemuck::cast_slice(own);
        let took = main
            .gather_pod(ty, send, Some(&mut all), true, tag)
            .map(drop);
        let sent = std::mem::take(&mut *main.transport().sent.lock().unwrap());
        drop(ticket);
        (part, all, took, sent)
    }

    /// Rank 1 of 2, taking a broadcast that main lent, main answering its
    /// request with `answer`; returns what it took, the result, and what it
    /// sent.
    fn borrow(answer: Event) -> (Vec<f64>, Result<()>, Vec<Packet>) {
        let rank = rank_of_two(1);
        rank.transport().events.lock().unwrap().push_back(answer);
        let data = lent_values();
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
        drop(ticket);
        (buf, took, sent)
    }

    #[test]
    fn a_borrower_asks_for_the_rest_and_copies_it_when_refused() {
        let (buf, took, sent) = borrow(refusal(0, Op::Broadcast));
        took.unwrap();
        // The request for the rest from a huge-page boundary, then the ack.
        assert_eq!(sent.len(), 2);
        let ask = asked(&sent[0]);
        let at = split(buf.as_ptr() as usize, buf.len() * 8).unwrap();
        assert_eq!(ask.dst, buf.as_ptr() as u64 + at as u64);
        assert_eq!(ask.len as usize, buf.len() * 8 - at);
        assert_eq!(ask.pid, std::process::id());
    }

    #[test]
    fn a_borrower_left_without_an_answer_gives_its_buffer_up() {
        let (buf, took, sent) = borrow(gone(0));
        assert!(took.is_err());
        // Abandoned, not freed: main might still have been writing.
        assert!(buf.is_empty() && buf.capacity() == 0);
        assert_eq!(sent.len(), 1, "only the request; no ack");
    }

    /// `from`'s refusal to write what it was asked in call `op`.
    fn refusal(from: usize, op: Op) -> Event {
        let tag = Tag::new(op, 1);
        let msg = Msg::new(Pushed {
            failed: Some("not today".into()),
        });
        Event::Packet {
            from,
            packet: Packet::data(1, tag, msg),
        }
    }

    /// Rank `rank` is gone.
    fn gone(rank: usize) -> Event {
        Event::Gone {
            rank,
            error: Error::WorkerDied {
                rank,
                status: "killed (test)".into(),
            },
        }
    }

    fn asked(packet: &Packet) -> PushHere {
        packet.body().duplicate().unwrap().into_value().unwrap()
    }

    #[test]
    fn main_asks_for_the_whole_part_while_it_copies_its_own() {
        let own = [1.5, 2.5];
        let (part, all, took, sent) = gather(&own, refusal(1, Op::Gather));
        took.unwrap();
        // Refused: main copied the part itself, after its own.
        assert_eq!(all[..2], own);
        assert_eq!(all[2..], part);
        // The request for the whole part at its place, then the ack.
        assert_eq!(sent.len(), 2);
        let ask = asked(&sent[0]);
        assert_eq!(ask.dst, all[2..].as_ptr() as u64);
        assert_eq!(ask.len as usize, part.len() * 8);
        assert_eq!(ask.pid, std::process::id());
    }

    #[test]
    fn main_with_no_part_of_its_own_asks_for_the_rest_of_the_workers() {
        let (part, all, took, sent) = gather(&[], refusal(1, Op::Gather));
        took.unwrap();
        assert_eq!(all, part);
        let ask = asked(&sent[0]);
        let at = split(all.as_ptr() as usize, all.len() * 8).unwrap();
        assert_eq!(ask.dst, all.as_ptr() as u64 + at as u64);
        assert_eq!(ask.len as usize, part.len() * 8 - at);
    }

    #[test]
    fn main_left_without_an_answer_gives_its_buffer_up() {
        let (_, all, took, sent) = gather(&[1.5], gone(1));
        assert!(took.is_err());
        // Abandoned, not freed: the worker might still have been writing.
        assert!(all.is_empty() && all.capacity() == 0);
        assert!(matches!(asked(&sent[0]), PushHere { .. }));
    }

    #[test]
    fn the_borrowers_part_ends_on_a_huge_page_boundary_past_a_quarter() {
        let len = 40 << 20;
        assert_eq!(split(0, len), Some(10 << 20));
        assert_eq!(split(4096, len), Some((12 << 20) - 4096));
        // Where the boundary after a quarter is the end, nobody helps.
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
