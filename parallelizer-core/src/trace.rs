//! What the framework tells a `tracing` subscriber: a span per region on
//! every rank and per collective call, an event when each ends (operation,
//! rank, bytes when known, duration), and events of the workers' lifecycle.
//!
//! Targets: `parallelizer::region`, `parallelizer::collective` (both at
//! `DEBUG`) and `parallelizer::worker` (`INFO`, and `WARN` for a death;
//! events of a processes worker are re-emitted there on main, see
//! `backend::processes`). With no subscriber interested, each call costs
//! one disabled callsite check (an atomic load and a compare; 0.5 ns
//! measured in a loop on this 2-core machine, against 2.5-11 ns for a
//! disabled span, an `enabled!` and an event checked one after the other),
//! no span and no clock read.

use std::time::Instant;

use crate::error::Result;
use crate::op::Op;

/// Target of region spans and events.
pub(crate) const REGION: &str = "parallelizer::region";
/// Target of collective spans and events.
pub(crate) const COLLECTIVE: &str = "parallelizer::collective";
/// Target of worker lifecycle events (spawn, ready, death, reap) and of the
/// events workers forward to main.
pub(crate) const WORKER: &str = "parallelizer::worker";

/// A collective call being traced: its span, entered for the call, and its
/// start, when a subscriber wants them (one callsite check otherwise).
pub(crate) struct Call {
    on: Option<(tracing::span::EnteredSpan, Instant)>,
    op: Op,
    rank: usize,
}

/// Starts tracing the call `op` of rank `rank`.
#[inline]
pub(crate) fn call(op: Op, rank: usize) -> Call {
    let on = if tracing::enabled!(target: COLLECTIVE, tracing::Level::DEBUG) {
        start_call(op, rank)
    } else {
        None
    };
    Call { on, op, rank }
}

/// The span and start of a traced call; out of line, so that untraced
/// calls stay small.
#[cold]
#[inline(never)]
fn start_call(op: Op, rank: usize) -> Option<(tracing::span::EnteredSpan, Instant)> {
    let span = tracing::debug_span!(target: COLLECTIVE, "collective", op = op.name(), rank);
    Some((span.entered(), Instant::now()))
}

impl Call {
    /// The call ended with `result`; `bytes` tells how many bytes it moved,
    /// when known (asked only if a subscriber listens).
    #[inline]
    pub(crate) fn end<T>(self, result: &Result<T>, bytes: impl FnOnce(&T) -> Option<usize>) {
        if let Some((_span, start)) = self.on {
            let bytes = result.as_ref().ok().and_then(bytes);
            tracing::debug!(
                target: COLLECTIVE,
                op = self.op.name(),
                rank = self.rank,
                bytes,
                micros = start.elapsed().as_micros() as u64,
                ok = result.is_ok(),
                "{} on rank {}",
                self.op,
                self.rank,
            );
        }
    }
}

/// A region being traced on one rank.
pub(crate) struct Region {
    on: Option<(tracing::span::EnteredSpan, Instant)>,
    rank: usize,
}

/// Starts tracing rank `rank`'s part of a region of `task` on `nprocs`
/// ranks of `mode`.
#[inline]
pub(crate) fn region(task: &str, mode: &str, rank: usize, nprocs: usize) -> Region {
    let on = tracing::enabled!(target: REGION, tracing::Level::DEBUG).then(|| {
        let span = tracing::debug_span!(target: REGION, "region", task, mode, rank, nprocs);
        (span.entered(), Instant::now())
    });
    Region { on, rank }
}

impl Region {
    /// This rank's part ended with `result`.
    #[inline]
    pub(crate) fn end<T>(self, result: &Result<T>) {
        if let Some((_span, start)) = self.on {
            tracing::debug!(
                target: REGION,
                rank = self.rank,
                micros = start.elapsed().as_micros() as u64,
                ok = result.is_ok(),
                "region done on rank {}",
                self.rank,
            );
        }
    }
}
