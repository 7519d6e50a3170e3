//! The fault matrix (issue 11): a fault on rank 2 of 4 during each kind of
//! operation, on every backend that can survive it. The cells are defined
//! once, here; `tests/fault_matrix.rs` runs them on threads and processes
//! (`cargo test`) and, under `mpirun`, on MPI (`.ci/mpi.sh`).
//!
//! A cell is a region ([`fault_cell`]) in which every rank but rank 2 takes
//! part in the operation and then in a gather to main, so main is blocked
//! waiting for rank 2, while rank 2 waits [`BEFORE_FAULT`] (so the others
//! are blocked by then) and fails in the operation's place. [`check`] runs
//! it and says whether main got the typed error naming rank 2 in time and
//! whether the next region works.

use std::time::{Duration, Instant};

use parallelizer::prelude::*;
use parallelizer::{Error, Op};
use serde::{Deserialize, Serialize};

/// The rank that fails.
pub const FAULTY: usize = 2;
/// How long rank 2 works before its fault, so the others wait for it.
pub const BEFORE_FAULT: Duration = Duration::from_millis(200);
/// The deadline (`Config::timeout`) of every cell's `run`.
pub const DEADLINE: Duration = Duration::from_secs(1);
/// How long rank 2 sleeps in the sleep cell: well past the deadline.
pub const SLEEP: Duration = Duration::from_secs(3);
/// How soon after the fault main must have its error (after the deadline,
/// for the sleep cell).
pub const WITHIN: Duration = Duration::from_secs(1);
/// The bytes of each message of the large send.
pub const LARGE: usize = 16 << 20;

/// What rank 2 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// `panic!`.
    Panic,
    /// Returns `Err` from the task.
    Err,
    /// `std::process::exit(3)`.
    Exit,
    /// `SIGKILL` to itself.
    Kill,
    /// Sleeps past the deadline.
    Sleep,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Panic,
        Fault::Err,
        Fault::Exit,
        Fault::Kill,
        Fault::Sleep,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Panic => "panic",
            Fault::Err => "Err",
            Fault::Exit => "exit(3)",
            Fault::Kill => "SIGKILL",
            Fault::Sleep => "sleep",
        }
    }

    /// The name on a command line (`panic`, `err`, `exit`, `kill`, `sleep`).
    pub fn key(self) -> &'static str {
        match self {
            Fault::Panic => "panic",
            Fault::Err => "err",
            Fault::Exit => "exit",
            Fault::Kill => "kill",
            Fault::Sleep => "sleep",
        }
    }

    pub fn from_key(key: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.key() == key)
    }

    /// Whether the fault ends rank 2's process.
    pub fn kills_the_process(self) -> bool {
        matches!(self, Fault::Exit | Fault::Kill)
    }

    /// Whether `error`, main's error, is the one this fault must give.
    pub fn expected(self, error: &Error) -> bool {
        match (self, error) {
            (Fault::Panic, Error::WorkerPanicked { rank, message }) => {
                *rank == FAULTY && message.contains("injected panic on rank 2")
            }
            (Fault::Err, Error::TaskFailed { rank, message }) => {
                *rank == FAULTY && message.contains("injected error on rank 2")
            }
            (Fault::Exit | Fault::Kill, Error::WorkerDied { rank, .. }) => *rank == FAULTY,
            (Fault::Sleep, Error::Timeout { op, rank, .. }) => *rank == FAULTY && *op == Op::Run,
            _ => false,
        }
    }

    /// The longest main may wait for its error, from the start of `run`.
    pub fn bound(self) -> Duration {
        match self {
            Fault::Sleep => DEADLINE + WITHIN,
            _ => BEFORE_FAULT + WITHIN,
        }
    }

    /// Rank 2's fault. Returns only for `Err` (and, after sleeping, for
    /// `Sleep`).
    pub fn strike(self) -> Result<(), String> {
        std::thread::sleep(BEFORE_FAULT);
        match self {
            Fault::Panic => panic!("injected panic on rank 2"),
            Fault::Err => Err("injected error on rank 2".into()),
            Fault::Exit => std::process::exit(3),
            Fault::Kill => kill_self(),
            Fault::Sleep => {
                std::thread::sleep(SLEEP);
                Err("woke up after the deadline".into())
            }
        }
    }
}

/// SIGKILL to this process.
#[cfg(unix)]
fn kill_self() -> ! {
    // SAFETY: kill(2) of this process with a constant signal.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    unreachable!("SIGKILL returned")
}

/// No signals: the closest is an abort.
#[cfg(not(unix))]
fn kill_self() -> ! {
    std::process::abort()
}

/// The operation rank 2 fails in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    SendReceive,
    /// Main sends rank 2 [`LARGE`] bytes, more than any transport sends
    /// without its receiver (a ring, an MPI eager limit).
    Large,
    /// Rank 1 sends rank 2 [`LARGE`] bytes; main waits in the gather.
    LargePeer,
    Broadcast,
    Scatter,
    Gather,
    Map,
    Wait,
    /// A gather then a broadcast in a group of ranks 1, 2 and 3 (made by
    /// those ranks inside the region); main waits in the region's gather.
    Subgroup,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::SendReceive,
        Step::Large,
        Step::LargePeer,
        Step::Broadcast,
        Step::Scatter,
        Step::Gather,
        Step::Map,
        Step::Wait,
        Step::Subgroup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::SendReceive => "send/receive",
            Step::Large => "large send",
            Step::LargePeer => "large send 1 to 2",
            Step::Broadcast => "broadcast",
            Step::Scatter => "scatter",
            Step::Gather => "gather",
            Step::Map => "map",
            Step::Wait => "wait",
            Step::Subgroup => "subgroup",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Step::SendReceive => "p2p",
            Step::Large => "large",
            Step::LargePeer => "peer",
            Step::Broadcast => "broadcast",
            Step::Scatter => "scatter",
            Step::Gather => "gather",
            Step::Map => "map",
            Step::Wait => "wait",
            Step::Subgroup => "subgroup",
        }
    }

    pub fn from_key(key: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// One cell: rank 2 fails with `fault` in `step`; every other rank takes
/// part in `step`, then all gather to main.
#[parallelizer::task]
pub fn fault_cell(par: &dyn Parallelizer, (fault, step): (Fault, Step)) -> Result<u64, String> {
    let me = par.id();
    let faulty = me == FAULTY;
    let e = |e: Error| e.to_string();
    // In a map, rank 2 fails inside the mapped function (an `Err` cannot
    // leave it, so that one fails in the map's place); in a subgroup, once
    // the group is made.
    if faulty && step != Step::Subgroup && (step != Step::Map || fault == Fault::Err) {
        fault.strike()?;
    }
    match step {
        Step::SendReceive => {
            if me == 0 {
                par.send(7u64, FAULTY).map_err(e)?;
                par.receive::<u64>(FAULTY).map_err(e)?;
            } else if faulty {
                let x = par.receive::<u64>(0).map_err(e)?;
                par.send(x + 1, 0).map_err(e)?;
            }
        }
        Step::Large => {
            large_send(par, 0, me).map_err(e)?;
        }
        Step::LargePeer => {
            large_send(par, 1, me).map_err(e)?;
        }
        Step::Broadcast => {
            par.broadcast(par.on_main().then_some(5u64)).map_err(e)?;
        }
        Step::Scatter => {
            let data = par.on_main().then(|| (0..40u64).collect::<Vec<_>>());
            par.scatter(data).map_err(e)?;
        }
        Step::Gather => {
            par.gather(me as u64).map_err(e)?;
        }
        Step::Map => {
            let data = par.on_main().then(|| (0..40u64).collect::<Vec<_>>());
            par.map(
                move |x: u64| {
                    if faulty {
                        if let Err(msg) = fault.strike() {
                            panic!("{msg}");
                        }
                    }
                    x * 2
                },
                data,
            )
            .map_err(e)?;
        }
        Step::Wait => par.wait().map_err(e)?,
        Step::Subgroup => {
            if me != 0 {
                let group = par.subgroup(&[1, 2, 3]).map_err(e)?;
                if faulty {
                    fault.strike()?;
                }
                let all = group.gather(me as u64).map_err(e)?;
                let sum = all.map(|v| v.iter().sum::<u64>());
                group.broadcast(sum).map_err(e)?;
            }
        }
    }
    let all = par.gather(me as u64).map_err(e)?;
    Ok(all.map_or(0, |v| v.iter().sum()))
}

/// The region after a fault: every rank's id, gathered.
#[parallelizer::task]
pub fn next_run(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    par.gather(par.id()).unwrap()
}

/// What one cell showed on main.
#[derive(Debug, Clone)]
pub struct Cell {
    pub fault: Fault,
    pub step: Step,
    /// From the start of `run` to main's error.
    pub took: Duration,
    /// Main's error, or what went wrong instead.
    pub got: std::result::Result<Error, String>,
    /// Whether the error is the expected one, in time.
    pub typed_in_time: bool,
    /// The next region's result: `Ok(nprocs)` if it worked.
    pub next: std::result::Result<usize, String>,
}

impl Cell {
    pub fn passed(&self) -> bool {
        self.typed_in_time && self.next.is_ok()
    }

    /// A one-word summary for the table: `0.31s` or `FAIL`.
    pub fn mark(&self) -> String {
        if self.passed() {
            format!("ok {:.2}s", self.took.as_secs_f64())
        } else {
            format!("FAIL {:.2}s", self.took.as_secs_f64())
        }
    }

    /// What main got, for a log line.
    pub fn detail(&self) -> String {
        let got = match &self.got {
            Ok(e) => format!("{e}"),
            Err(s) => s.clone(),
        };
        let next = match &self.next {
            Ok(n) => format!("next run ok on {n} ranks"),
            Err(e) => format!("next run failed: {e}"),
        };
        format!("{got}; {next}")
    }
}

/// Runs one cell on `par` (entered by the caller, with [`DEADLINE`] as its
/// timeout) and the next region after it.
pub fn check(par: &dyn Parallelizer, fault: Fault, step: Step) -> Cell {
    let start = Instant::now();
    let result = par.try_run(fault_cell, (fault, step));
    let took = start.elapsed();
    let got = match result {
        Ok(v) => Err(format!("run returned Ok({v})")),
        Err(e) => Ok(e),
    };
    let typed_in_time = took <= fault.bound() && got.as_ref().is_ok_and(|e| fault.expected(e));
    let next = match par.run(next_run, ()) {
        Ok(Some(ids)) if ids == (0..par.nprocs()).collect::<Vec<_>>() => Ok(ids.len()),
        Ok(other) => Err(format!("gathered {other:?}")),
        Err(e) => Err(e.to_string()),
    };
    Cell {
        fault,
        step,
        took,
        got,
        typed_in_time,
        next,
    }
}

/// [`LARGE`] bytes from rank `from` to rank 2, as rank `me`.
fn large_send(par: &dyn Parallelizer, from: usize, me: usize) -> Result<(), Error> {
    if me == from {
        par.send_slice(&vec![7u8; LARGE], FAULTY)
    } else if me == FAULTY {
        par.receive_into(&mut vec![0u8; LARGE], from)
    } else {
        Ok(())
    }
}

/// The matrix as a table: faults down, operations across; `-` for cells
/// not run (with the reason in `skipped`).
pub fn table(title: &str, cells: &[Cell], skipped: &[(Fault, &str)]) -> String {
    let mut out = format!("{title}\n| fault \\ operation |");
    for s in Step::ALL {
        out += &format!(" {} |", s.name());
    }
    out += "\n|---|";
    out += &"---|".repeat(Step::ALL.len());
    out += "\n";
    for f in Fault::ALL {
        out += &format!("| {} |", f.name());
        for s in Step::ALL {
            let mark = cells
                .iter()
                .find(|c| c.fault == f && c.step == s)
                .map_or_else(|| "-".to_string(), Cell::mark);
            out += &format!(" {mark} |");
        }
        out += "\n";
    }
    for (f, why) in skipped {
        out += &format!("{}: not run: {why}\n", f.name());
    }
    out
}
