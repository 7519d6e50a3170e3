//! The small all-to-all collectives through posts on a board (a barrier;
//! an all-reduce, reduce, scan or all-gather of one number), on threads
//! (the heap) and processes (shared memory): results equal
//! across ranks and to the sums they should be, over many regions and after
//! failed ones; and the protocol's guarantees kept without messages: a
//! rank that skips the call is a deadlock, another call a contract
//! violation, another type a codec error, each within a second and with
//! the pool working afterwards.

use std::sync::Arc;
use std::time::Duration;

#[cfg(target_os = "linux")]
use crate::common::procs::{assert_no_workers_left, counts_workers};
use crate::common::within::within;
use parallelizer::prelude::*;
use parallelizer::{Op, Reduce, Wait};

/// The modes whose transport has a board.
const MODES: &[&str] = if cfg!(target_os = "linux") {
    &["threads", "processes"]
} else {
    &["threads"]
};

fn pool(mode: &str, n: usize) -> Arc<dyn Parallelizer> {
    parallelizer::from_config(Config::new(mode).nprocs(n)).unwrap()
}

/// No worker process is left behind (a no-op off Linux).
fn none_left() {
    #[cfg(target_os = "linux")]
    assert_no_workers_left();
}

/// One round's results: a sum, a maximum, an or and a product.
type Round = (f64, i32, u8, i64);

/// Every rank's results of `rounds` all-reduces of each kind, with a
/// barrier between rounds: sums of f64, maxima of i32, ors of u8 and
/// products of i64 through a closure.
#[parallelizer::task]
fn reductions(par: &dyn Parallelizer, rounds: u32) -> Option<Vec<Vec<Round>>> {
    let id = par.id();
    let mut out = Vec::new();
    for i in 0..rounds {
        let sum = par
            .allreduce(id as f64 + f64::from(i), Reduce::Sum)
            .unwrap();
        let max = par.allreduce(i as i32 - id as i32, Reduce::Max).unwrap();
        let or = par.allreduce(1u8 << id, Reduce::BitOr).unwrap();
        let product = par
            .allreduce(id as i64 + 1, |a: i64, b: i64| a * b)
            .unwrap();
        par.wait().unwrap();
        out.push((sum, max, or, product));
    }
    par.gather(out).unwrap()
}

/// One round of the other small calls on one rank: its reduce (main's
/// `Some`), its prefix and the all-gather.
type Others = (Option<i64>, u64, Vec<f32>);

/// Every rank's results of `rounds` reduces of i64, scans of u64 and
/// all-gathers of f32.
#[parallelizer::task]
fn others(par: &dyn Parallelizer, rounds: u32) -> Option<Vec<Vec<Others>>> {
    let id = par.id();
    let mut out = Vec::new();
    for i in 0..rounds {
        let reduced = par
            .reduce(id as i64 * 10 + i64::from(i), Reduce::Sum)
            .unwrap();
        let prefix = par.scan(id as u64 + 1, Reduce::Sum).unwrap();
        let all = par.allgather(id as f32 / 2.0).unwrap();
        out.push((reduced, prefix, all));
    }
    par.gather(out).unwrap()
}

/// Ranks 0 and 1 post an all-reduce that rank 2 never joins (it fails).
#[parallelizer::task]
fn fail_on_2_before_allreduce(par: &dyn Parallelizer, (): ()) -> Result<f64, String> {
    par.wait().map_err(|e| e.to_string())?;
    if par.id() == 2 {
        return Err("rank 2 fails before its all-reduce".into());
    }
    par.allreduce(1.0, Reduce::Sum).map_err(|e| e.to_string())
}

#[parallelizer::test]
fn small_allreduces_and_barriers_agree_over_regions_and_after_failures() {
    #[cfg(target_os = "linux")]
    let _one = counts_workers();
    for (mode, n) in MODES.iter().flat_map(|m| [(m, 2), (m, 3), (m, 4)]) {
        let par = pool(mode, n);
        let _in = par.enter().unwrap();
        // Odd and even numbers of posts per region, so that regions start
        // on either of a rank's two posts.
        for rounds in [1, 2, 3, 200] {
            let all = par.run(reductions, rounds).unwrap().unwrap();
            let ranks = n as f64;
            for i in 0..rounds as usize {
                let want = (
                    ranks * (ranks - 1.0) / 2.0 + ranks * i as f64,
                    i as i32,
                    ((1u32 << n) - 1) as u8,
                    (1..=n as i64).product::<i64>(),
                );
                for (rank, results) in all.iter().enumerate() {
                    assert_eq!(results[i], want, "{mode}:{n}, round {i}, rank {rank}");
                }
            }
        }
        let all = par.run(others, 3).unwrap().unwrap();
        for (rank, results) in all.iter().enumerate() {
            for (i, got) in results.iter().enumerate() {
                let sum = (0..n as i64).map(|r| r * 10 + i as i64).sum::<i64>();
                let want: Others = (
                    (rank == 0).then_some(sum),
                    (1..=rank as u64 + 1).sum(),
                    (0..n).map(|r| r as f32 / 2.0).collect(),
                );
                assert_eq!(got, &want, "{mode}:{n}, round {i}, rank {rank}");
            }
        }
        if n >= 3 {
            let err = par.try_run(fail_on_2_before_allreduce, ()).unwrap_err();
            assert!(err.to_string().contains("rank 2 fails"), "{err}");
            let all = par.run(reductions, 3).unwrap().unwrap();
            assert_eq!(all.len(), n, "the pool works after the failure");
        }
    }
    none_left();
}

#[parallelizer::task]
fn skip_allreduce_on_2(par: &dyn Parallelizer, (): ()) -> Result<f64, Error> {
    if par.id() == 2 {
        return Ok(0.0);
    }
    par.allreduce(1.0, Reduce::Sum)
}

#[parallelizer::task]
fn wait_on_1_while_others_allreduce(par: &dyn Parallelizer, (): ()) -> Result<(), Error> {
    if par.id() == 1 {
        return par.wait();
    }
    par.allreduce(1.0, Reduce::Sum).map(drop)
}

#[parallelizer::task]
fn i64_on_1_while_others_f64(par: &dyn Parallelizer, (): ()) -> Result<(), Error> {
    if par.id() == 1 {
        return par.allreduce(1i64, Reduce::Sum).map(drop);
    }
    par.allreduce(1.0f64, Reduce::Sum).map(drop)
}

/// The error `fails` returns, on another thread, printed under `what`;
/// it must come within a second.
fn error_within_a_second(what: &str, fails: impl FnOnce() -> Error + Send + 'static) -> Error {
    let (err, took) = within(Duration::from_secs(20), fails);
    println!("{what}: {err} ({took:.2?})");
    assert!(took < Duration::from_secs(1), "{what}: {took:?}");
    err
}

#[parallelizer::test]
fn a_skipped_small_allreduce_is_a_deadlock_and_another_call_or_type_an_error() {
    #[cfg(target_os = "linux")]
    let _one = counts_workers();
    for mode in MODES {
        let par = pool(mode, 3);
        let _in = par.enter().unwrap();
        let p = par.clone();
        let err = error_within_a_second(
            &format!("{mode}: ranks 0 and 1 wait for finished rank 2"),
            move || p.try_run(skip_allreduce_on_2, ()).unwrap_err(),
        );
        let main_waits = Wait {
            rank: 0,
            on: 2,
            op: Op::Allreduce,
            finished: true,
        };
        assert!(
            matches!(&err, Error::Deadlock { waits } if waits.contains(&main_waits)),
            "{err}"
        );
        let p = par.clone();
        let msg = error_within_a_second(&format!("{mode}: rank 1 in a barrier"), move || {
            p.try_run(wait_on_1_while_others_allreduce, ()).unwrap_err()
        })
        .to_string();
        assert!(
            msg.contains("contract violation") && msg.contains("wait") && msg.contains("allreduce"),
            "{msg}"
        );
        let p = par.clone();
        let msg = error_within_a_second(&format!("{mode}: rank 1 reduces an i64"), move || {
            p.try_run(i64_on_1_while_others_f64, ()).unwrap_err()
        })
        .to_string();
        assert!(
            msg.contains("another type") && (msg.contains("f64") || msg.contains("i64")),
            "{msg}"
        );
        let all = par.run(reductions, 2).unwrap().unwrap();
        assert_eq!(all.len(), 3, "the pool works afterwards");
    }
    none_left();
}
