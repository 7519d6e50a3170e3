//! The `verify` option: mismatched collectives and waits for a rank that
//! has finished its task are errors instead of hangs (MPI's collectives
//! cannot tell; the threads and processes backends always check).
//!
//! - Every collective of a region starts with an exchange of `[operation,
//!   number, state]` among all ranks (an `MPI_Allgather` of three words, the
//!   cost of the option; the number counts this rank's collectives in the
//!   region). If two running ranks are in different calls, every rank fails
//!   with [`Error::ContractViolation`] naming both ranks and both calls.
//! - A rank whose task has returned sends every other rank a one-byte note
//!   (whether its task failed), then takes part in the exchanges of the
//!   collectives the others still call, as "finished", until every rank has
//!   finished: a rank in a collective then fails with [`Error::Deadlock`]
//!   listing every wait for a finished rank, or with [`Error::Aborted`] if
//!   the finished rank failed. A rank blocked in `receive` from a finished
//!   rank finds its note instead of a message, with the same errors.
//! - A deadlock or mismatch found this way is the region's error on every
//!   rank (it replaces a task's own error, say the panic of an `unwrap` of
//!   it), so `run` returns it on main.
//!
//! Plain data then travels as messages (the `*_pod` calls lose their
//! native MPI datatypes), so that it is checked too. Cycles of
//! point-to-point waits are not detected (the run's deadline ends them).

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use super::fate::Current;
use super::handles::Comm;
use super::{Mpi, calls};
use crate::error::{Error, Result, Wait};
use crate::msg::Msg;
use crate::op::Op;
use crate::outcome::Outcome;

/// Tag of the note a rank sends when its task has returned.
pub(super) const TAG_FINISHED: c_int = 6;

/// A rank in a collective.
const RUNNING: u64 = 0;
/// A rank whose task returned.
const FINISHED: u64 = 1;
/// A rank whose task failed (without ULFM; with it the revoke takes over).
const FAILED: u64 = 2;

/// The note of a finished rank, by state (sent from static memory, which
/// outlives the non-blocking send).
static NOTE_FINISHED: u8 = FINISHED as u8;
static NOTE_FAILED: u8 = FAILED as u8;

impl Mpi {
    /// The check before a collective `op` on `comm`, in a region, when the
    /// option is on.
    pub(super) fn verify_call(&self, cur: &Current, comm: Comm, op: Op) -> Result<()> {
        if !self.verify || comm.size() == 1 {
            return Ok(());
        }
        self.exchange(cur, comm, op, RUNNING).map(drop)
    }

    /// One exchange: every rank's `[op, number, state]`; `Ok(true)` when
    /// every rank has finished, `Ok(false)` when the running ranks are in
    /// the same call, else the error every rank derives from the same table.
    fn exchange(&self, cur: &Current, comm: Comm, op: Op, state: u64) -> Result<bool> {
        let seq = cur.verified.fetch_add(1, Ordering::SeqCst);
        let table = calls::allgather_u64(comm, &[u64::from(op.code()), seq, state])?;
        let rows: Vec<(usize, u64, u64, u64)> = table
            .chunks(3)
            .enumerate()
            .map(|(r, w)| (r, w[0], w[1], w[2]))
            .collect();
        let running: Vec<_> = rows.iter().filter(|r| r.3 == RUNNING).collect();
        let Some(&&(first, first_op, first_seq, _)) = running.first() else {
            return Ok(true);
        };
        let name = |code: u64| u8::try_from(code).ok().and_then(Op::from_code);
        if let Some(failed) = rows.iter().find(|r| r.3 == FAILED) {
            cur.released_by.get_or_init(|| failed.0);
            return Err(Error::Aborted { by_rank: failed.0 });
        }
        let finished: Vec<usize> = rows
            .iter()
            .filter(|r| r.3 == FINISHED)
            .map(|r| r.0)
            .collect();
        let error = if !finished.is_empty() {
            let waits = running
                .iter()
                .flat_map(|&&(rank, code, _, _)| {
                    finished.iter().map(move |&on| Wait {
                        rank,
                        on,
                        op: name(code).unwrap_or(Op::Run),
                        finished: true,
                    })
                })
                .collect();
            Error::Deadlock { waits }
        } else if let Some(&&(other, code, other_seq, _)) =
            running.iter().find(|r| (r.1, r.2) != (first_op, first_seq))
        {
            let call = |code: u64, seq: u64| match name(code) {
                Some(op) => format!("{op} #{seq}"),
                None => format!("an unknown call ({code}) #{seq}"),
            };
            Error::ContractViolation(format!(
                "rank {first} called {} while rank {other} called {} (verify)",
                call(first_op, first_seq),
                call(code, other_seq)
            ))
        } else {
            return Ok(false);
        };
        cur.verify_failure.get_or_init(|| error.clone());
        Err(error)
    }

    /// The note of rank `from` that `receive` found instead of a message
    /// (`note`, or if it was only probed, received here): the error of a
    /// wait for a finished rank.
    pub(super) fn finished_peer(
        &self,
        cur: &Current,
        comm: Comm,
        from: usize,
        note: Option<u8>,
    ) -> Error {
        let note = match note {
            Some(n) => Ok(n),
            None => calls::recv_exact::<u8>(comm, from, TAG_FINISHED, 1, 1).map(|n| n[0]),
        };
        cur.take_note(from);
        match note {
            Ok(n) if n == NOTE_FAILED => {
                cur.released_by.get_or_init(|| from);
                Error::Aborted { by_rank: from }
            }
            Ok(_) => {
                let error = Error::Deadlock {
                    waits: vec![Wait {
                        rank: comm.rank(),
                        on: from,
                        op: Op::Receive,
                        finished: true,
                    }],
                };
                cur.verify_failure.get_or_init(|| error.clone());
                error
            }
            Err(e) => e,
        }
    }

    /// The end of this rank's task when the option is on: the notes, the
    /// exchanges of the collectives the others still call, and the notes of
    /// the others. Returns the outcome to settle: a deadlock or mismatch
    /// found in the region replaces the task's own ending.
    pub(super) fn verify_end(&self, cur: &Current, outcome: Outcome<Msg>) -> Outcome<Msg> {
        let comm = cur.comm;
        if !self.verify || comm.size() == 1 {
            return outcome;
        }
        let own_failure = outcome.is_own_failure()
            && cur.verify_failure.get().is_none()
            && cur.released_by.get().is_none();
        if own_failure && self.world.faults.is_ulfm() {
            // The revoke releases everyone (`fate.rs`).
            return outcome;
        }
        // A rank that another rank's failure released tells its peers so
        // (the note of a failure): a peer waiting for it would otherwise
        // take it for a rank that finished on its own and report a deadlock
        // where the region's error is that failure (a chain of waits ending
        // at a failed rank). Its state stays `FINISHED`: the failure is the
        // releasing rank's.
        let released = cur.released_by.get().is_some();
        let (note, state) = if own_failure {
            (&NOTE_FAILED, FAILED)
        } else if released {
            (&NOTE_FAILED, FINISHED)
        } else {
            (&NOTE_FINISHED, FINISHED)
        };
        let me = comm.rank();
        let mut whole = true;
        for to in (0..comm.size()).filter(|&r| r != me) {
            whole &=
                calls::isend_static(comm, std::slice::from_ref(note), to, TAG_FINISHED).is_ok();
        }
        // Take part in the others' collectives until every rank is done.
        while whole {
            match self.exchange(cur, comm, Op::Run, state) {
                Ok(true) => break,
                // MPI failed (a revoked communicator): the agreement takes over.
                Err(Error::Mpi(_)) => whole = false,
                // The others' errors; they go on until they finish.
                Ok(false) | Err(_) => {}
            }
        }
        if whole {
            for from in (0..comm.size()).filter(|&r| r != me && !cur.note_taken(r)) {
                if calls::recv_exact::<u8>(comm, from, TAG_FINISHED, 1, 1).is_err() {
                    break;
                }
            }
        }
        match (cur.verify_failure.get(), cur.released_by.get()) {
            (Some(e), _) => Outcome::Failed(e.clone()),
            // A failure of this task after another rank's (an `unwrap` of
            // `Aborted`) is not its own.
            (None, Some(&by_rank)) if outcome.is_own_failure() => {
                Outcome::Failed(Error::Aborted { by_rank })
            }
            _ => outcome,
        }
    }
}
