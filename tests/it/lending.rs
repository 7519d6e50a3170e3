//! The threads backend lends buffers of 64 KiB and more to the ranks that
//! receive them (they copy straight out of the sender's memory while it
//! waits): a failure or a missing receive while a buffer is lent releases
//! the lender with an error, nothing hangs, and the buffer is never read
//! after its call returned.

use crate::common::lending;
use parallelizer::prelude::*;

/// Values above the lending threshold (64 KiB).
const LARGE: usize = 100_000;

#[test]
fn a_receiver_that_panics_releases_the_lender() {
    lending::a_borrower_that_panics_releases_the_lender(&*from_config("threads:3").unwrap());
}

#[test]
fn a_lent_buffer_nobody_receives_is_a_deadlock_not_a_hang() {
    lending::a_loan_nobody_takes_is_a_deadlock(&*from_config("threads:2").unwrap());
}

#[test]
fn a_lender_that_fails_meanwhile_is_reported_and_every_rank_released() {
    // Main lends to two workers in a broadcast; worker 2 fails before it
    // takes part. Worker 1 copied; main is released from its wait.
    let par = from_config("threads:3").unwrap();
    let err = par.try_run(
        |p: &dyn Parallelizer, ()| {
            if p.id() == 2 {
                return Err("no memory for the broadcast".to_string());
            }
            let mut buf = vec![p.id() as f64; LARGE];
            p.broadcast_into(&mut buf).map_err(|e| e.to_string())?;
            Ok(buf[LARGE - 1])
        },
        (),
    );
    let err = err.unwrap_err();
    assert!(matches!(err, Error::TaskFailed { rank: 2, .. }), "{err:?}");
}

#[test]
fn large_and_small_buffers_give_the_same_results_under_load() {
    // Many lends and copies back to back on every rank, in both
    // directions: the receivers always see the sender's values.
    let par = from_config("threads:4").unwrap();
    let _entered = par.enter().unwrap();
    for n in [10, LARGE] {
        let got = par
            .run(
                move |p: &dyn Parallelizer, ()| {
                    let on = p.on_main();
                    let mut ok = true;
                    let mut all = Vec::new();
                    let mut mine = Vec::new();
                    for round in 0..20 {
                        let data: Vec<u32> = (0..n as u32).map(|i| i ^ round).collect();
                        let mut buf = if on { data.clone() } else { vec![0; n] };
                        p.broadcast_into(&mut buf).unwrap();
                        ok &= buf == data;
                        p.scatter_into(on.then_some(&data[..]), &mut mine).unwrap();
                        p.gather_into(&mine, on.then_some(&mut all)).unwrap();
                        ok &= !on || all == data;
                    }
                    p.gather(ok).unwrap()
                },
                (),
            )
            .unwrap();
        assert_eq!(got, Some(vec![true; 4]), "n={n}");
    }
}

#[test]
fn a_large_gather_into_a_held_buffer_is_copied_whole_and_in_order() {
    // Parts of 24 MB: main copies its own and the lent ones over the cores
    // the waiting lenders leave free (into the buffer of the round before),
    // and every byte lands in its place, round after round.
    const PART: usize = 3 << 20;
    let par = from_config("threads:2").unwrap();
    let got = par
        .run(
            |p: &dyn Parallelizer, ()| {
                let mut all: Vec<u64> = Vec::new();
                let mut ok = true;
                for round in 0..3u64 {
                    let at = (p.id() * PART) as u64;
                    let mine: Vec<u64> = (at..at + PART as u64).map(|x| x ^ round).collect();
                    p.gather_into(&mine, p.on_main().then_some(&mut all))
                        .unwrap();
                    ok &=
                        !p.on_main() || all.iter().enumerate().all(|(i, &x)| x == i as u64 ^ round);
                }
                p.gather(ok).unwrap()
            },
            (),
        )
        .unwrap();
    assert_eq!(got, Some(vec![true; 2]));
}
