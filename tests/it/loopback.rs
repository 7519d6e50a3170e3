//! A user-defined backend, registered with `#[parallelizer(name = "loopback")]`
//! in this test crate exactly like the built-ins, found by `from_config`,
//! `lookup` and `modes()`, and run through the SPMD suite.
//!
//! `Loopback` is written only against the public backend-author API, the way
//! the README's "Writing a backend" shows: it implements a `Transport` whose
//! packets travel as bytes over `std::sync::mpsc` (as they would through a
//! socket) and hands each region to `run_on_threads`. Releasing the ranks
//! when one fails, reporting, deadlines and deadlock detection come from the
//! region protocol; none of it is written here.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use parallelizer::backend::{
    Core, Event, FromConfig, Limits, Msg, Packet, Region, Transport, run_on_threads,
};
use parallelizer::{
    Config, Error, Parallelizer, Restricted, Result, Where, main_restricted, parallelizer,
    worker_restricted,
};

/// Ranks as threads started for each region, talking through bytes.
#[parallelizer(name = "loopback")]
pub struct Loopback {
    core: Core,
    nprocs: usize,
}

impl FromConfig for Loopback {
    fn from_config(config: &Config) -> Result<Loopback> {
        Ok(Loopback {
            core: Core::new(config.clone()),
            nprocs: config.nprocs_or(2)?,
        })
    }
}

/// One rank's end: a sender to every rank's inbox, and its own inbox.
struct End {
    id: usize,
    to: Vec<Sender<(usize, Vec<u8>)>>,
    inbox: Mutex<Receiver<(usize, Vec<u8>)>>,
}

impl Transport for End {
    fn send(&self, to: usize, packet: Packet) -> Result<()> {
        let mut bytes = Vec::new();
        packet.encode(&mut bytes)?;
        // A rank that has finished has dropped its inbox: like a closed socket.
        let _ = self.to[to].send((self.id, bytes));
        Ok(())
    }

    fn recv(&self, until: Option<Instant>) -> Result<Option<Event>> {
        let inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        let got = match until {
            Some(t) => inbox
                .recv_timeout(t.saturating_duration_since(Instant::now()))
                .ok(),
            None => inbox.recv().ok(),
        };
        got.map(|(from, bytes)| {
            Ok(Event::Packet {
                from,
                packet: Packet::decode(&bytes)?,
            })
        })
        .transpose()
    }
}

impl Parallelizer for Loopback {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        0
    }
    fn nprocs(&self) -> usize {
        self.nprocs
    }
    fn in_region(&self) -> bool {
        false
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        let (to, inboxes): (Vec<_>, Vec<_>) = (0..self.nprocs).map(|_| channel()).unzip();
        let ends = inboxes
            .into_iter()
            .enumerate()
            .map(|(id, inbox)| End {
                id,
                to: to.clone(),
                inbox: Mutex::new(inbox),
            })
            .collect();
        run_on_threads(
            &self.core,
            ends,
            region,
            Limits::from_config(self.core.config()),
        )
    }
}

#[test]
fn registered_like_a_builtin() {
    let modes = parallelizer::modes();
    for m in ["loopback", "serial", "threads"] {
        assert!(modes.contains(&m.to_string()), "{modes:?}");
    }
    let par = parallelizer::from_config("loopback").unwrap();
    assert_eq!((par.mode(), par.nprocs()), ("loopback", 2));
    assert_eq!(parallelizer::from_config("loopback:5").unwrap().nprocs(), 5);
    assert_eq!(parallelizer::lookup("loopback:3").nprocs(), 3);
    let config = Config::new("loopback").nprocs(4);
    assert_eq!(parallelizer::from_config(&config).unwrap().nprocs(), 4);
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Suite {
    id: usize,
    scattered: Vec<u32>,
    broadcast: String,
    sent: Option<u64>,
}

#[parallelizer::task]
fn spmd(par: &dyn Parallelizer, n: u32) -> Option<Vec<Suite>> {
    let scattered = par
        .scatter(par.on_main().then(|| (0..n).collect()))
        .unwrap();
    let broadcast = par
        .broadcast(par.on_main().then(|| "hello".to_string()))
        .unwrap();
    // Point to point around a ring.
    let next = (par.id() + 1) % par.nprocs();
    let prev = (par.id() + par.nprocs() - 1) % par.nprocs();
    par.send(par.id() as u64 * 10, next).unwrap();
    let sent = Some(par.receive::<u64>(prev).unwrap());
    par.wait().unwrap();
    let doubled = par
        .map(|x: u32| x * 2, par.on_main().then(|| (0..n).collect()))
        .unwrap();
    if let Some(d) = doubled {
        assert_eq!(d, (0..n).map(|x| x * 2).collect::<Vec<_>>());
    }
    par.print(Where::Worker, "loopback worker");
    par.gather(Suite {
        id: par.id(),
        scattered,
        broadcast,
        sent,
    })
    .unwrap()
}

#[test]
fn spmd_suite_on_loopback_4() {
    let par = parallelizer::from_config("loopback:4").unwrap();
    let all = par.run(spmd, 10).unwrap().unwrap();
    let chunks = [vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]];
    for (rank, s) in all.iter().enumerate() {
        assert_eq!(s.id, rank);
        assert_eq!(s.scattered, chunks[rank]);
        assert_eq!(s.broadcast, "hello");
        assert_eq!(s.sent, Some(((rank + 3) % 4) as u64 * 10));
    }
    // Pool-style map and a registered task's error, like the built-ins.
    let squares = par.map(|x: u64| x * x, Some((0..9).collect())).unwrap();
    assert_eq!(
        squares.unwrap(),
        (0..9).map(|x| x * x).collect::<Vec<u64>>()
    );
    let err = par
        .try_run(
            |p: &dyn Parallelizer, ()| {
                if p.id() == 3 {
                    Err("three")
                } else {
                    Ok(p.id())
                }
            },
            (),
        )
        .unwrap_err();
    assert!(matches!(err, Error::TaskFailed { rank: 3, .. }), "{err}");
}

#[main_restricted]
fn mainr(par: &dyn Parallelizer, x: u32) -> (String, u32) {
    let _ = par;
    ("main".to_string(), x)
}

#[worker_restricted]
fn workr(par: &dyn Parallelizer, x: u32) -> (String, u32, usize) {
    ("worker".to_string(), x, par.id())
}

#[test]
fn guards_on_loopback_ranks() {
    let par = parallelizer::from_config("loopback:3").unwrap();
    let seen = par
        .run(
            |p: &dyn Parallelizer, ()| p.gather((mainr(p, 1), workr(p, 2))).unwrap(),
            (),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        seen[0],
        (
            Restricted::Ran(("main".into(), 1)),
            Restricted::InMainProcess
        )
    );
    for (rank, s) in seen.iter().enumerate().skip(1) {
        assert_eq!(
            *s,
            (
                Restricted::InWorkerProcess,
                Restricted::Ran(("worker".into(), 2, rank))
            )
        );
    }
}

#[test]
fn a_rank_panicking_mid_gather_is_its_error_at_once() {
    let par = parallelizer::from_config("loopback:4").unwrap();
    let start = Instant::now();
    let err = par
        .run(
            |p: &dyn Parallelizer, ()| {
                if p.id() == 2 {
                    panic!("boom on rank 2");
                }
                p.gather(p.id()).unwrap()
            },
            (),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::WorkerPanicked { rank: 2, message } if message == "boom on rank 2"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // The next region works.
    let ids = par
        .run(|p: &dyn Parallelizer, ()| p.gather(p.id()).unwrap(), ())
        .unwrap();
    assert_eq!(ids, Some(vec![0, 1, 2, 3]));
}

#[test]
fn mismatched_calls_and_hopeless_waits_are_errors_without_a_timeout() {
    let par = parallelizer::from_config("loopback:3").unwrap();
    // Rank 1 broadcasts-receives while the others gather: nobody can move.
    let err = par
        .run(
            |p: &dyn Parallelizer, ()| {
                if p.id() == 1 {
                    p.broadcast::<u8>(None).map(|_| None)
                } else {
                    p.gather(p.id())
                }
            },
            (),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Deadlock { .. }), "{err}");
}
