//! Loans of large buffers that go wrong, the same on every backend that
//! lends (threads within a process, processes across processes): a
//! borrower that fails releases the lender, and a loan nobody takes is a
//! deadlock, not a hang.

use std::time::{Duration, Instant};

use parallelizer::prelude::*;
use parallelizer::{Op, Wait};

/// Main lends a buffer above the lending thresholds to every worker in a
/// broadcast (a loan on threads from 64 KiB, and on processes from 1 MiB,
/// below which a broadcast to a single worker streams); rank 2 panics
/// instead of taking part.
#[parallelizer::task]
pub fn lend_to_a_panicking_rank(p: &dyn Parallelizer, (): ()) {
    match p.id() {
        0 => {
            let mut data = vec![1.5f64; 200_000];
            let sent = p.broadcast_into(&mut data);
            // The loan ended with the call: the buffer is ours again.
            drop(data);
            assert!(
                matches!(sent, Err(Error::Aborted { by_rank: 2 })),
                "{sent:?}"
            );
        }
        2 => {
            std::thread::sleep(Duration::from_millis(30));
            panic!("receiver gave up");
        }
        _ => {
            // Released by rank 2's failure, or done before it.
            let _ = p.broadcast_into(&mut vec![0.0f64; 200_000]);
        }
    }
}

/// Main lends its workers a buffer in a broadcast they never join.
#[parallelizer::task]
pub fn lend_to_nobody(p: &dyn Parallelizer, (): ()) -> Result<()> {
    if p.on_main() {
        return p.broadcast_into(&mut vec![7u8; 1 << 20]);
    }
    Ok(())
}

/// On `par` (3 ranks or more): the panicking borrower's run fails with its
/// panic, the lender was released, and it took less than 10 s.
pub fn a_borrower_that_panics_releases_the_lender(par: &dyn Parallelizer) {
    let start = Instant::now();
    let err = par.run(lend_to_a_panicking_rank, ()).unwrap_err();
    assert!(
        matches!(err, Error::WorkerPanicked { rank: 2, .. }),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// On `par` (2 ranks or more): the loan nobody takes is main's wait on a
/// finished rank 1, reported as a deadlock in less than 10 s.
pub fn a_loan_nobody_takes_is_a_deadlock(par: &dyn Parallelizer) {
    let start = Instant::now();
    match par.run(lend_to_nobody, ()).unwrap_err() {
        Error::Deadlock { waits } => assert_eq!(
            waits,
            [Wait {
                rank: 0,
                on: 1,
                op: Op::Broadcast,
                finished: true
            }]
        ),
        other => panic!("expected a deadlock, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}
