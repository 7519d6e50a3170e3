//! The region protocol against a scripted transport: reports that arrive
//! in an order no real run can force, sends that fail as a transport's
//! do when its receiver is late or gone; and the order in which a
//! transport's default `send_all` copies and sends.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::op::{Op, Tag};
use crate::outcome::Outcome;
use crate::parallelizer::Parallelizer;

use super::packet::{DoneNote, Kind, Packet};
use super::{Event, LinkRank, Transport, test_rank};

/// The other ranks of a region, scripted: hands the rank under test the
/// events queued in `events`, keeps what it sends in `sent` (or fails the
/// next send with `refuse`), and lets it read memory across processes
/// (they all live in this one).
#[derive(Default)]
pub(super) struct Script {
    pub events: Mutex<VecDeque<Event>>,
    pub sent: Mutex<Vec<Packet>>,
    pub refuse: Mutex<Option<Error>>,
}

impl Transport for Script {
    fn send(&self, _to: usize, packet: Packet) -> Result<()> {
        if let Some(e) = self.refuse.lock().unwrap().take() {
            return Err(e);
        }
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

fn main_of(nprocs: usize) -> LinkRank<Script> {
    test_rank(0, nprocs, Duration::from_millis(100), Script::default())
}

fn done(from: usize, error: Option<Error>) -> Event {
    let note = DoneNote {
        error,
        sent: vec![0; 3],
    };
    Event::Packet {
        from,
        packet: Packet::control(Kind::Done, 1, note),
    }
}

/// Rank 2 failed and released rank 1, which main waits on; rank 1's report
/// (released) reaches main before rank 2's (the failure): main waits for
/// the failure instead of declaring a deadlock on a finished rank.
#[test]
fn a_release_reported_before_its_cause_is_not_a_deadlock() {
    let main = main_of(3);
    let tag = Tag::new(Op::Map, 1);
    main.deliver(done(1, Some(Error::Aborted { by_rank: 2 })));
    let soon = Instant::now() + Duration::from_millis(20);
    assert!(matches!(main.recv_any_msg(&[1], tag, Some(soon)), Ok(None)));
    let panicked = Error::WorkerPanicked {
        rank: 2,
        message: "item 13 is cursed".into(),
    };
    main.transport()
        .events
        .lock()
        .unwrap()
        .push_back(done(2, Some(panicked.clone())));
    let got = main.recv_any_msg(&[1], tag, None);
    assert!(matches!(got, Err(Error::Aborted { by_rank: 2 })), "{got:?}");
    let finish = main.finish_main(Outcome::Failed(Error::Aborted { by_rank: 2 }));
    assert_eq!(finish.result.unwrap_err(), panicked);
}

/// A rank that finished on its own without sending what main waits for
/// will never send it: a deadlock, at once.
#[test]
fn a_wait_on_a_rank_that_finished_on_its_own_is_a_deadlock() {
    let main = main_of(3);
    let tag = Tag::new(Op::Map, 1);
    main.deliver(done(1, None));
    match main.recv_any_msg(&[1], tag, None) {
        Err(Error::Deadlock { waits }) => assert!(waits[0].finished && waits[0].on == 1),
        other => panic!("{other:?}"),
    }
}

/// A send that fails as the processes transport's does when its receiver
/// does not read a frame too large for the ring by the deadline (the
/// stream, cut mid-frame, is lost: the failed write reveals a `Gone`).
fn cut_at_the_deadline(rank: &LinkRank<Script>, to: usize) -> Error {
    let late = Error::Timeout {
        op: Op::Run,
        rank: to,
        after: Duration::from_secs(1),
    };
    let t = rank.transport();
    *t.refuse.lock().unwrap() = Some(late.clone());
    t.events.lock().unwrap().push_back(Event::Gone {
        rank: to,
        error: Error::WorkerDied {
            rank: to,
            status: "a send timed out mid-frame".into(),
        },
    });
    late
}

/// Main's send that ran into the deadline names its receiver late: the
/// stream it cut is not that rank's death.
#[test]
fn mains_send_cut_at_the_deadline_names_its_receiver_late() {
    let main = main_of(3);
    let late = cut_at_the_deadline(&main, 2);
    let got = main.send_msg(crate::msg::Msg::new(7u64), 2, Tag::new(Op::Send, 1));
    assert_eq!(got.as_ref().unwrap_err(), &late);
    main.deliver(done(1, None));
    let finish = main.finish_main(Outcome::Failed(late.clone()));
    assert_eq!(finish.result.unwrap_err(), late);
}

/// A worker whose send found its receiver gone reports a release by that
/// rank, as after a receive: main learns of the loss itself, which is the
/// region's error.
#[test]
fn a_workers_send_to_a_lost_rank_is_reported_as_a_release() {
    let worker = test_rank(1, 3, Duration::from_millis(100), Script::default());
    let late = cut_at_the_deadline(&worker, 2);
    let got = worker.send_msg(crate::msg::Msg::new(7u64), 2, Tag::new(Op::Send, 1));
    worker.finish_worker(Outcome::Failed(got.unwrap_err()));
    let mut sent = worker.transport().sent.lock().unwrap();
    let at = sent.iter().rposition(|p| p.kind() == Kind::Done).unwrap();
    let note = sent.remove(at).note::<DoneNote>().unwrap();
    assert_eq!(
        note.error,
        Some(Error::Aborted { by_rank: 2 }),
        "not {late}"
    );
}

/// Clones of [`Counted`], and sends of [`Recorder`], in order.
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A transport that records its sends in [`EVENTS`].
struct Recorder;

impl Transport for Recorder {
    fn send(&self, to: usize, _: Packet) -> Result<()> {
        EVENTS.lock().unwrap().push(format!("send {to}"));
        Ok(())
    }
    fn recv(&self, _: Option<Instant>) -> Result<Option<Event>> {
        Ok(None)
    }
}

/// A value whose clones are recorded in [`EVENTS`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Counted;

impl Clone for Counted {
    fn clone(&self) -> Self {
        EVENTS.lock().unwrap().push("clone".into());
        Counted
    }
}

#[test]
fn a_broadcast_makes_every_copy_before_it_sends_any() {
    let body = crate::msg::Msg::cloneable(Counted);
    let packet = Packet::data(1, Tag::new(Op::Broadcast, 1), body);
    Recorder.send_all(&[1, 2, 3], &packet).unwrap();
    assert_eq!(
        *EVENTS.lock().unwrap(),
        ["clone", "clone", "clone", "send 1", "send 2", "send 3"]
    );
}
