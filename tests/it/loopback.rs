//! A user-defined backend, registered with `#[parallelizer(name = "loopback")]`
//! in this test crate exactly like the built-ins, found by `from_config`,
//! `lookup` and `modes()`, and run through the SPMD suite.
//!
//! `Loopback` is a real (small) multi-rank backend written only against the
//! public API: ranks are scoped threads started per region, and every
//! message goes through its wire bytes over a `std::sync::mpsc` channel, as
//! it would through a socket. It implements only the transport
//! (`send_msg`/`recv_msg`) and `run_region`; the collectives are the
//! trait's defaults.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parallelizer::backend::{Core, FromConfig, Msg, Region, Tag, set_current};
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

/// A message on the wire: its encoding and bytes.
type Frame = (parallelizer::backend::Encoding, Vec<u8>);

/// One rank inside a loopback region.
struct Rank {
    core: Core,
    id: usize,
    nprocs: usize,
    /// `outbox[to]`; `None` for itself.
    outbox: Vec<Option<Sender<Frame>>>,
    /// `inbox[from]`.
    inbox: Vec<Option<Mutex<Receiver<Frame>>>>,
    timeout: Duration,
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
    fn send_msg(&self, _: Msg, _: usize, _: Tag) -> Result<()> {
        Err(Error::ContractViolation(
            "loopback: send outside a region".into(),
        ))
    }
    fn recv_msg(&self, _: usize, _: Tag) -> Result<Msg> {
        Err(Error::ContractViolation(
            "loopback: receive outside a region".into(),
        ))
    }

    fn run_region(&self, region: Region) -> Result<Msg> {
        let n = self.nprocs;
        let timeout = self
            .core
            .config()
            .timeout
            .unwrap_or(Duration::from_secs(20));
        // One channel per ordered pair of ranks.
        let mut outboxes: Vec<Vec<Option<Sender<Frame>>>> = (0..n).map(|_| Vec::new()).collect();
        let mut inboxes: Vec<Vec<Option<Mutex<Receiver<Frame>>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for (from, outbox) in outboxes.iter_mut().enumerate() {
            for (to, inbox) in inboxes.iter_mut().enumerate() {
                if from == to {
                    outbox.push(None);
                } else {
                    let (tx, rx) = channel();
                    outbox.push(Some(tx));
                    inbox[from] = Some(Mutex::new(rx));
                }
            }
        }
        let mut ranks: Vec<Arc<dyn Parallelizer>> = outboxes
            .into_iter()
            .zip(inboxes)
            .enumerate()
            .map(|(id, (outbox, inbox))| {
                parallelizer::backend::new(Rank {
                    core: Core::shared(self.core.config_arc().clone()),
                    id,
                    nprocs: n,
                    outbox,
                    inbox,
                    timeout,
                })
            })
            .collect();
        let (task, args) = region.into_parts();
        let wire = args.to_bytes()?;
        let main = ranks.remove(0);
        std::thread::scope(|s| {
            let workers: Vec<_> = ranks
                .into_iter()
                .map(|rank| {
                    let (task, wire) = (task.clone(), wire.clone());
                    s.spawn(move || {
                        let _current = set_current(rank.clone());
                        let args = Msg::from_bytes(parallelizer::backend::Encoding::Serde, wire);
                        // Dropping the rank closes its outboxes: peers
                        // waiting on it wake up instead of hanging.
                        task.run(&*rank, args).map(drop)
                    })
                })
                .collect();
            let outcome = {
                let _current = set_current(main.clone());
                task.run(&*main, args)
            };
            drop(main);
            let mut first_failure = None;
            for (i, w) in workers.into_iter().enumerate() {
                let failure = match w.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) if e.is_secondary() => None,
                    Ok(Err(e)) => Some(e),
                    Err(panic) => Some(Error::WorkerPanicked {
                        rank: i + 1,
                        message: panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default(),
                    }),
                };
                first_failure = first_failure.or(failure);
            }
            match (outcome, first_failure) {
                (_, Some(e)) => Err(e),
                (outcome, None) => outcome,
            }
        })
    }
}

impl Parallelizer for Rank {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        self.id
    }
    fn nprocs(&self) -> usize {
        self.nprocs
    }
    fn in_region(&self) -> bool {
        true
    }
    fn send_msg(&self, msg: Msg, to: usize, _: Tag) -> Result<()> {
        let tx = self.outbox[to].as_ref().ok_or(Error::InvalidRank {
            rank: to,
            nprocs: self.nprocs,
        })?;
        let encoding = msg.encoding();
        tx.send((encoding, msg.into_bytes()?))
            .map_err(|_| Error::Aborted { by_rank: to })
    }
    fn recv_msg(&self, from: usize, _: Tag) -> Result<Msg> {
        let rx = self.inbox[from].as_ref().ok_or(Error::InvalidRank {
            rank: from,
            nprocs: self.nprocs,
        })?;
        let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
        match rx.recv_timeout(self.timeout) {
            Ok((encoding, bytes)) => Ok(Msg::from_bytes(encoding, bytes)),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Aborted { by_rank: from }),
            Err(RecvTimeoutError::Timeout) => Err(Error::Timeout {
                op: parallelizer::Op::Receive,
                rank: from,
                after: self.timeout,
            }),
        }
    }
    fn run_region(&self, region: Region) -> Result<Msg> {
        region.run_here(self)
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
