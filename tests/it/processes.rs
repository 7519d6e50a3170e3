//! The `processes` backend with the worker guard: the integration suite at
//! 2, 3 and 4 ranks against serial, and the fault tests (README, "Failure:
//! nothing hangs, nothing is lost"), each checking that no worker process is left behind.
//!
//! `#[parallelizer::test]` starts every test with the worker entry: in a
//! worker launched for this test it serves tasks and exits; in the test
//! process it returns. Tasks are `#[parallelizer::task]` fns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::common::procs::{assert_no_workers_left, counts_workers, workers};
use crate::common::within::within;
use parallelizer::prelude::*;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- helpers

/// Tests run one at a time, and not while another test of this binary has
/// workers: they check this process's worker children.
fn one_at_a_time() -> RwLockWriteGuard<'static, ()> {
    counts_workers()
}

fn processes(n: usize) -> Arc<dyn Parallelizer> {
    parallelizer::from_config(
        Config::new("processes")
            .nprocs(n)
            .timeout(Duration::from_secs(60)),
    )
    .unwrap()
}

fn serial() -> Arc<dyn Parallelizer> {
    parallelizer::from_config("serial").unwrap()
}

// ------------------------------------------------------------------ tasks

#[parallelizer::task]
fn chunk_lens(par: &dyn Parallelizer, n: usize) -> Option<Vec<usize>> {
    let chunk = par
        .scatter(par.on_main().then(|| (0..n).collect::<Vec<usize>>()))
        .unwrap();
    // Contiguous: each chunk is a run of consecutive items.
    assert!(chunk.windows(2).all(|w| w[1] == w[0] + 1));
    par.gather(chunk.len()).unwrap()
}

#[parallelizer::task]
fn scatter_sum(par: &dyn Parallelizer, n: u64) -> u64 {
    let chunk = par
        .scatter(par.on_main().then(|| (1..=n).collect::<Vec<u64>>()))
        .unwrap();
    let all = par.gather(chunk.iter().sum::<u64>()).unwrap();
    all.map_or(0, |v| v.iter().sum())
}

#[parallelizer::task]
fn gather_order(par: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
    par.gather(format!("rank {}", par.id() * 10)).unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Params {
    name: String,
    xs: Vec<f64>,
    k: u32,
    tags: Option<Vec<(u8, String)>>,
}

fn params() -> Params {
    Params {
        name: "woop".into(),
        xs: vec![1.5, -2.0, 1e300],
        k: 7,
        tags: Some(vec![(1, "a".into()), (2, "b".into())]),
    }
}

#[parallelizer::task]
fn broadcast_struct(par: &dyn Parallelizer, (): ()) -> Option<Vec<Params>> {
    let p = par.broadcast(par.on_main().then(params)).unwrap();
    par.gather(p).unwrap()
}

type Maps = (Vec<u64>, Vec<i64>, Vec<String>, Vec<i32>);

#[parallelizer::task]
fn all_maps(par: &dyn Parallelizer, n: u64) -> Option<Maps> {
    let data = || par.on_main().then(|| (0..n).collect::<Vec<u64>>());
    let a = par.map(|x: u64| x * x + 1, data()).unwrap();
    let b = par
        .map_with(
            |x: u64, k: &i64| x as i64 * k,
            data(),
            par.on_main().then_some(-3i64),
        )
        .unwrap();
    let c = par
        .map_chunks(
            |xs: Vec<u64>| xs.iter().map(|x| format!("<{x}>")).collect(),
            data(),
        )
        .unwrap();
    let d = par
        .starmap(
            |a: i32, b: i32| a * b,
            par.on_main()
                .then(|| (0..n as i32).map(|i| (i, i + 1)).collect()),
        )
        .unwrap();
    Some((a?, b?, c?, d?))
}

/// Rank r sends to rank (r + 1) % n, receives from (r - 1) % n: worker to
/// worker, worker to main and main to worker.
#[parallelizer::task]
fn ring(par: &dyn Parallelizer, (): ()) -> Option<Vec<(usize, String)>> {
    let (id, n) = (par.id(), par.nprocs());
    let next = (id + 1) % n;
    let prev = (id + n - 1) % n;
    par.send(format!("from {id}"), next).unwrap();
    let got: String = par.receive(prev).unwrap();
    par.wait().unwrap();
    par.gather((id, got)).unwrap()
}

#[parallelizer::task]
fn waits(par: &dyn Parallelizer, rounds: u32) -> Option<Vec<u32>> {
    for _ in 0..rounds {
        par.wait().unwrap();
    }
    par.gather(rounds).unwrap()
}

#[parallelizer::task]
fn pids(par: &dyn Parallelizer, (): ()) -> Option<Vec<u32>> {
    par.gather(par.pid()).unwrap()
}

#[parallelizer::task]
fn square(x: u64) -> u64 {
    x * x
}

#[parallelizer::task]
fn big_pod(par: &dyn Parallelizer, n: usize) -> Option<Vec<f64>> {
    // 8 * n bytes broadcast through shared memory, then scattered and gathered.
    let data = par
        .on_main()
        .then(|| (0..n).map(|i| i as f64).collect::<Vec<f64>>());
    let all = par.broadcast_pod(data.clone()).unwrap();
    let sum: f64 = all.iter().sum();
    let mine = par.scatter_pod(data).unwrap();
    let back = par.gather_pod(mine).unwrap();
    let sums = par.gather(sum).unwrap();
    back.zip(sums).map(|(b, s)| {
        assert_eq!(b.len(), n);
        assert!(b.iter().enumerate().all(|(i, x)| *x == i as f64));
        s
    })
}

static INITIALIZED: AtomicBool = AtomicBool::new(false);

#[parallelizer::task]
fn init_worker(_: &dyn Parallelizer, (): ()) {
    INITIALIZED.store(true, Ordering::SeqCst);
}

#[parallelizer::task]
fn init_fails(par: &dyn Parallelizer, (): ()) -> Result<(), String> {
    if par.id() == 2 {
        return Err("no licence on rank 2".into());
    }
    Ok(())
}

#[parallelizer::task]
fn initialized(par: &dyn Parallelizer, (): ()) -> Option<Vec<bool>> {
    par.gather(INITIALIZED.load(Ordering::SeqCst)).unwrap()
}

// ------------------------------------------------------------ suite tests

#[parallelizer::test]
fn gather_order_and_broadcast_struct() {
    let _one = one_at_a_time();
    for p in [2, 3, 4] {
        let par = processes(p);
        let _in = par.enter().unwrap();
        let order = par.run(gather_order, ()).unwrap().unwrap();
        let want: Vec<String> = (0..p).map(|i| format!("rank {}", i * 10)).collect();
        assert_eq!(order, want);
        let got = par.run(broadcast_struct, ()).unwrap().unwrap();
        assert_eq!(got, vec![params(); p]);
        let s = serial().run(broadcast_struct, ()).unwrap().unwrap();
        assert_eq!(s, vec![params()]);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn maps_equal_serial() {
    let _one = one_at_a_time();
    let want = serial().run(all_maps, 23).unwrap();
    for p in [2, 3, 4] {
        assert_eq!(processes(p).run(all_maps, 23).unwrap(), want, "{p} ranks");
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn send_receive_between_any_ranks_and_wait() {
    let _one = one_at_a_time();
    for p in [2, 3, 4] {
        let par = processes(p);
        let _in = par.enter().unwrap();
        let got = par.run(ring, ()).unwrap().unwrap();
        let want: Vec<(usize, String)> = (0..p)
            .map(|i| (i, format!("from {}", (i + p - 1) % p)))
            .collect();
        assert_eq!(got, want);
        assert_eq!(par.run(waits, 5).unwrap(), Some(vec![5; p]));
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn pool_style_map_and_workers_persist_across_regions() {
    let _one = one_at_a_time();
    let data: Vec<u64> = (0..100).collect();
    let want: Vec<u64> = data.iter().map(|x| x * x).collect();
    // Outside any enter: the map opens (and closes) a region itself.
    let par = processes(3);
    assert_eq!(
        par.map(square, Some(data.clone())).unwrap(),
        Some(want.clone())
    );
    assert!(!par.in_region());
    assert_no_workers_left();
    {
        let _in = par.enter().unwrap();
        let first = par.run(pids, ()).unwrap().unwrap();
        assert_eq!(par.map(square, Some(data.clone())).unwrap(), Some(want));
        let second = par.run(pids, ()).unwrap().unwrap();
        assert_eq!(
            first, second,
            "the same workers serve every region of one enter"
        );
        assert_eq!(first.len(), 3);
        assert_eq!(workers().len(), 2);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn plain_data_through_shared_memory() {
    let _one = one_at_a_time();
    let n = 3_000_000; // 24 MB, over the 1 MiB threshold
    let want = (0..n).map(|i| i as f64).sum::<f64>();
    let sums = processes(3).run(big_pod, n).unwrap().unwrap();
    assert_eq!(sums, vec![want; 3]);
    // Below the threshold the same calls go in-band.
    let small = processes(2).run(big_pod, 1000).unwrap().unwrap();
    assert_eq!(small, vec![499_500.0; 2]);
    assert_no_workers_left();
}

#[parallelizer::test]
fn closures_and_unregistered_fns_are_refused() {
    let _one = one_at_a_time();
    let par = processes(2);
    let err = par.run(|p: &dyn Parallelizer, ()| p.id(), ()).unwrap_err();
    assert!(matches!(err, Error::TaskNotRegistered { .. }), "{err}");
    assert!(err.to_string().contains("#[parallelizer::task]"), "{err}");
    fn unregistered(_: &dyn Parallelizer, (): ()) {}
    let err = par.run(unregistered, ()).unwrap_err();
    assert!(matches!(err, Error::TaskNotRegistered { .. }), "{err}");
    let err = par.map(|x: u64| x + 1, Some(vec![1])).unwrap_err();
    assert!(matches!(err, Error::TaskNotRegistered { .. }), "{err}");
    // One rank: no worker process, the same rules.
    let one = processes(1);
    assert_eq!(
        one.run(gather_order, ()).unwrap(),
        Some(vec!["rank 0".to_string()])
    );
    assert!(matches!(
        one.run(|p: &dyn Parallelizer, ()| p.id(), ()),
        Err(Error::TaskNotRegistered { .. })
    ));
    assert_no_workers_left();
}

#[parallelizer::test]
fn initializer_runs_once_per_rank_and_its_failure_fails_enter() {
    let _one = one_at_a_time();
    let config = Config::new("processes")
        .nprocs(3)
        .initializer("it::processes::init_worker");
    let par = parallelizer::from_config(&config).unwrap();
    // Main and each worker ran it, before the first region.
    assert_eq!(
        par.run(initialized, ()).unwrap(),
        Some(vec![true, true, true])
    );
    let bad =
        parallelizer::from_config(config.clone().initializer("it::processes::init_fails")).unwrap();
    let err = bad.enter().map(|_| ()).unwrap_err();
    assert!(
        matches!(err, Error::TaskFailed { rank: 2, ref message } if message.contains("licence")),
        "{err}"
    );
    // A misspelled path fails when the parallelizer is built.
    assert!(matches!(
        parallelizer::from_config(config.initializer("it::processes::nope")).map(|_| ()),
        Err(Error::Config(_))
    ));
    assert_no_workers_left();
}

// ------------------------------------------------------------ fault tests

#[parallelizer::task]
fn panic_in_gather(par: &dyn Parallelizer, (): ()) -> Result<Option<Vec<usize>>, Error> {
    if par.id() == 2 {
        std::thread::sleep(Duration::from_millis(100)); // main is in gather by now
        panic!("boom on worker 2");
    }
    par.gather(par.id())
}

#[parallelizer::task]
fn err_on_rank_3(par: &dyn Parallelizer, (): ()) -> Result<Option<Vec<usize>>, String> {
    if par.id() == 3 {
        return Err("bad input on rank 3".into());
    }
    // Rank 1 waits on rank 3 too: it must be released.
    if par.id() == 1 {
        let _: u8 = par.receive(3).map_err(|e| e.to_string())?;
    }
    par.gather(par.id()).map_err(|e| e.to_string())
}

#[parallelizer::task]
fn exit_3(par: &dyn Parallelizer, (): ()) -> Result<Option<Vec<usize>>, Error> {
    if par.id() == 1 {
        std::process::exit(3);
    }
    par.gather(par.id())
}

#[parallelizer::task]
fn stall_in_broadcast(par: &dyn Parallelizer, mb: usize) -> Result<usize, Error> {
    if par.id() == 1 {
        // Does not read: main blocks writing to it until it is killed.
        std::thread::sleep(Duration::from_secs(30));
    }
    let v = par.broadcast_pod(par.on_main().then(|| vec![7u8; mb << 20]))?;
    Ok(v.len())
}

/// A broadcast that `processes:2` streams into the worker's buffer (800 KB),
/// with rank `who` failing instead of taking part: the worker dies, or main
/// gives up while the worker waits with its buffer posted.
#[parallelizer::task]
fn streamed_broadcast_failing(
    par: &dyn Parallelizer,
    who: usize,
) -> Result<Option<Vec<usize>>, String> {
    if par.id() == who {
        if who == 1 {
            std::process::exit(3);
        }
        return Err("main gave up before its broadcast".into());
    }
    let mut buf = vec![par.id() as f64; 100_000];
    par.broadcast_into(&mut buf).map_err(|e| e.to_string())?;
    par.gather(par.id()).map_err(|e| e.to_string())
}

#[parallelizer::task]
fn sleepy(par: &dyn Parallelizer, secs: u64) -> Result<Option<Vec<usize>>, Error> {
    if par.id() == 1 {
        std::thread::sleep(Duration::from_secs(secs));
    }
    par.gather(par.id())
}

#[parallelizer::task]
fn sleepy_try(par: &dyn Parallelizer, secs: u64) -> Result<Option<Vec<usize>>, Error> {
    sleepy(par, secs)
}

#[parallelizer::task]
fn inject(par: &dyn Parallelizer, what: u8) -> Result<Option<Vec<usize>>, Error> {
    use parallelizer::backend::processes::{__frame_header, __inject_raw};
    match (par.id(), what) {
        // A frame announcing 2^60 bytes, worker to main.
        (1, 0) => __inject_raw(0, &__frame_header(1 << 60))?,
        // A truncated frame, then the worker dies mid-frame.
        (1, 1) => {
            let mut bytes = __frame_header(100);
            bytes.extend_from_slice(&[0xAB; 10]);
            __inject_raw(0, &bytes)?;
            std::process::exit(0);
        }
        // Main sends worker 2 a frame announcing 2^60 bytes, then a broadcast
        // that worker 2 reads after it.
        (0, 2) => __inject_raw(2, &__frame_header(1 << 60))?,
        _ => {}
    }
    if what == 2 {
        par.broadcast(par.on_main().then_some(5u8))?;
    }
    par.gather(par.id())
}

/// A failed run, then a good one: the next run works, with fresh workers if
/// some died; nothing is left behind.
fn then_recovers(par: &Arc<dyn Parallelizer>) {
    let n = par.nprocs();
    assert_eq!(
        par.run(gather_order, ()).unwrap().map(|v| v.len()),
        Some(n),
        "the run after a failure"
    );
}

#[parallelizer::test]
fn fault_panic_on_a_worker_during_gather() {
    let _one = one_at_a_time();
    let par = processes(4);
    {
        let _in = par.enter().unwrap();
        let t = Instant::now();
        let err = par.try_run(panic_in_gather, ()).unwrap_err();
        assert!(
            matches!(err, Error::WorkerPanicked { rank: 2, ref message } if message.contains("boom on worker 2")),
            "{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn fault_err_on_rank_3_of_4() {
    let _one = one_at_a_time();
    let par = processes(4);
    {
        let _in = par.enter().unwrap();
        let t = Instant::now();
        let err = par.try_run(err_on_rank_3, ()).unwrap_err();
        assert!(
            matches!(err, Error::TaskFailed { rank: 3, ref message } if message.contains("bad input on rank 3")),
            "{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn fault_exit_in_a_worker() {
    let _one = one_at_a_time();
    let par = processes(3);
    {
        let _in = par.enter().unwrap();
        let t = Instant::now();
        let err = par.try_run(exit_3, ()).unwrap_err();
        assert!(
            matches!(err, Error::WorkerDied { rank: 1, ref status } if status.contains("exited with status 3")),
            "{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(3));
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn fault_in_a_broadcast_streamed_to_one_worker() {
    let _one = one_at_a_time();
    let par = parallelizer::from_config(Config::new("processes").nprocs(2)).unwrap();
    {
        let _in = par.enter().unwrap();
        let t = Instant::now();
        let err = par.try_run(streamed_broadcast_failing, 1).unwrap_err();
        assert!(
            matches!(err, Error::WorkerDied { rank: 1, ref status } if status.contains("exited with status 3")),
            "{err}"
        );
        then_recovers(&par);
        let err = par.try_run(streamed_broadcast_failing, 0).unwrap_err();
        assert!(
            matches!(&err, Error::TaskFailed { rank: 0, message } if message.contains("main gave up")),
            "{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn fault_sigkill_while_main_is_in_broadcast() {
    let _one = one_at_a_time();
    // In-band broadcast (no shared memory), so main blocks writing 64 MiB.
    let par = parallelizer::from_config(
        Config::new("processes")
            .nprocs(3)
            .option("shm_threshold", usize::MAX),
    )
    .unwrap();
    {
        let _in = par.enter().unwrap();
        let ranks = par.run(pids, ()).unwrap().unwrap();
        let victim = ranks[1] as i32;
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            // SAFETY: signalling our own child.
            unsafe { libc::kill(victim, libc::SIGKILL) };
            Instant::now()
        });
        let err = par.try_run(stall_in_broadcast, 64).unwrap_err();
        let killed_at = killer.join().unwrap();
        assert!(
            killed_at.elapsed() < Duration::from_secs(1),
            "WorkerDied must come within a second"
        );
        assert!(
            matches!(err, Error::WorkerDied { rank: 1, ref status } if status.contains("signal 9")),
            "{err}"
        );
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn fault_main_side_timeout_on_a_sleeping_worker() {
    let _one = one_at_a_time();
    let limit = Duration::from_millis(800);
    let par = parallelizer::from_config(Config::new("processes").nprocs(3).timeout(limit)).unwrap();
    {
        let _in = par.enter().unwrap();
        // The timeout is the deadline of the whole region: main's gather is
        // released at the deadline with the error naming the sleeper, which
        // is killed (and replaced for the next run).
        for attempt in 0..2 {
            let t = Instant::now();
            let err = match attempt {
                0 => par.run(sleepy, 30).unwrap_err(),
                _ => par.try_run(sleepy_try, 30).unwrap_err(),
            };
            assert!(matches!(err, Error::Timeout { rank: 1, .. }), "{err}");
            assert!(err.to_string().contains("rank 1 was late"), "{err}");
            assert!(
                t.elapsed() >= limit && t.elapsed() < limit + Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
        }
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn fault_oversized_and_truncated_frames() {
    let _one = one_at_a_time();
    let par = processes(3);
    {
        let _in = par.enter().unwrap();
        let err = par.try_run(inject, 0).unwrap_err();
        assert!(
            matches!(err, Error::Codec(ref m) if m.contains("over the limit")),
            "{err}"
        );
        then_recovers(&par);

        let err = par.try_run(inject, 1).unwrap_err();
        assert!(
            matches!(err, Error::WorkerDied { rank: 1, ref status } if status.contains("middle of a frame")),
            "{err}"
        );
        then_recovers(&par);

        let err = par.try_run(inject, 2).unwrap_err();
        assert!(
            matches!(err, Error::Codec(ref m) if m.contains("over the limit")),
            "{err}"
        );
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn output_inherited_when_not_prefixed() {
    let _one = one_at_a_time();
    let par = parallelizer::from_config(
        Config::new("processes")
            .nprocs(3)
            .option("prefix_output", false),
    )
    .unwrap();
    assert_eq!(par.run(gather_order, ()).unwrap().map(|v| v.len()), Some(3));
    let bad = parallelizer::from_config(
        Config::new("processes")
            .nprocs(3)
            .option("prefix_output", "maybe"),
    );
    assert!(matches!(bad, Err(Error::Config(_))));
    assert_no_workers_left();
}

#[parallelizer::task]
fn main_panics(par: &dyn Parallelizer, (): ()) -> Result<u8, Error> {
    if par.on_main() {
        panic!("main gives up");
    }
    // Workers wait for a broadcast that never comes: they must be released.
    par.broadcast::<u8>(None)
}

#[parallelizer::test]
fn fault_main_panics_while_workers_wait() {
    let _one = one_at_a_time();
    let par = processes(3);
    {
        let _in = par.enter().unwrap();
        let t = Instant::now();
        let panic =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| par.run(main_panics, ())))
                .unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"main gives up"));
        assert!(t.elapsed() < Duration::from_secs(5));
        then_recovers(&par);
    }
    assert_no_workers_left();
}

// ------------------------------------- issue 11: nothing hangs, no timeout

/// `processes:n` with no timeout: nothing may hang anyway.
fn untimed(n: usize) -> Arc<dyn Parallelizer> {
    parallelizer::from_config(Config::new("processes").nprocs(n)).unwrap()
}

fn timed(n: usize, timeout: Duration) -> Arc<dyn Parallelizer> {
    parallelizer::from_config(Config::new("processes").nprocs(n).timeout(timeout)).unwrap()
}

#[parallelizer::task]
fn skip_gather_on_2(par: &dyn Parallelizer, (): ()) -> Result<Option<Vec<usize>>, Error> {
    if par.id() == 2 {
        return Ok(None);
    }
    par.gather(par.id())
}

#[parallelizer::task]
fn receive_from_finished_2(par: &dyn Parallelizer, (): ()) -> Result<(), Error> {
    if par.id() == 1 {
        let _: u8 = par.receive(2)?;
    }
    Ok(())
}

#[parallelizer::task]
fn broadcast_none_on_main(par: &dyn Parallelizer, (): ()) -> Result<u8, Error> {
    par.broadcast(if par.on_main() { None } else { Some(5u8) })
}

#[parallelizer::test]
fn issue11_1_a_wait_on_a_finished_rank_is_a_deadlock_without_a_timeout() {
    use parallelizer::{Op, Wait};
    let _one = one_at_a_time();
    let par = untimed(3);
    {
        let _in = par.enter().unwrap();
        // Main waits in gather for rank 2, which skipped it and finished.
        let p = par.clone();
        let (err, took) = within(Duration::from_secs(20), move || {
            p.try_run(skip_gather_on_2, ()).unwrap_err()
        });
        println!("main waits for a finished rank: {err} ({took:.2?})");
        let want = Wait {
            rank: 0,
            on: 2,
            op: Op::Gather,
            finished: true,
        };
        assert!(
            matches!(&err, Error::Deadlock { waits } if waits == &[want]),
            "{err}"
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        then_recovers(&par);
        // A worker waits for another worker that finished.
        let p = par.clone();
        let (err, took) = within(Duration::from_secs(20), move || {
            p.try_run(receive_from_finished_2, ()).unwrap_err()
        });
        println!("worker waits for a finished rank: {err} ({took:.2?})");
        let want = Wait {
            rank: 1,
            on: 2,
            op: Op::Receive,
            finished: true,
        };
        assert!(
            matches!(&err, Error::Deadlock { waits } if waits == &[want]),
            "{err}"
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        then_recovers(&par);
        // Main passes None to broadcast, the workers Some: main's error, and
        // the workers are released.
        let p = par.clone();
        let (err, took) = within(Duration::from_secs(20), move || {
            p.try_run(broadcast_none_on_main, ()).unwrap_err()
        });
        println!("main passes None to broadcast: {err} ({took:.2?})");
        assert!(
            matches!(&err, Error::TaskFailed { rank: 0, message } if message.contains("main must pass Some")),
            "{err}"
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::task]
fn doubled_ids(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    par.gather(par.id() * 2).unwrap()
}

#[parallelizer::task]
fn run_on_itself(par: &dyn Parallelizer, (): ()) -> Result<Option<Vec<usize>>, Error> {
    // Main finds the parallelizer itself by name (workers, where the name is
    // not registered, get their rank handle): every rank runs the nested
    // region on its own handle.
    let inner = parallelizer::lookup("issue11-reentrant").run(doubled_ids, ())?;
    par.gather(inner.as_ref().map_or(0, Vec::len))?;
    Ok(inner)
}

#[parallelizer::test]
fn issue11_2_run_on_the_parallelizer_inside_its_own_region() {
    let _one = one_at_a_time();
    let par = untimed(3);
    par.register("issue11-reentrant");
    {
        let _in = par.enter().unwrap();
        let p = par.clone();
        let (got, took) = within(Duration::from_secs(20), move || {
            p.try_run(run_on_itself, ())
        });
        println!("run inside its own region: {got:?} ({took:.2?})");
        assert_eq!(got.unwrap(), Some(vec![0, 2, 4]));
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::task]
fn mismatched(par: &dyn Parallelizer, case: u8) -> Result<(), Error> {
    match (case, par.id()) {
        // Rank 1 broadcasts while the others gather.
        (0, 1) => drop(par.broadcast::<u8>(None)?),
        (0, _) => drop(par.gather(par.id())?),
        // Rank 2 skips one of two gathers.
        (1, 2) => drop(par.gather(2usize)?),
        (1, _) => {
            par.gather(par.id())?;
            par.gather(par.id())?;
        }
        _ => {}
    }
    Ok(())
}

#[parallelizer::test]
fn issue11_3_mismatched_collectives_fail_within_a_second_without_a_timeout() {
    let _one = one_at_a_time();
    let par = untimed(3);
    {
        let _in = par.enter().unwrap();
        for case in [0u8, 1] {
            let p = par.clone();
            let (err, took) = within(Duration::from_secs(20), move || {
                p.try_run(mismatched, case).unwrap_err()
            });
            println!("mismatched collectives, case {case}: {err} ({took:.2?})");
            assert!(
                matches!(err, Error::Deadlock { .. } | Error::ContractViolation(_)),
                "{err}"
            );
            assert!(took < Duration::from_secs(1), "{took:?}");
            then_recovers(&par);
        }
    }
    assert_no_workers_left();
}

#[parallelizer::task]
fn late_rank_1(par: &dyn Parallelizer, ms: u64) -> Result<Option<Vec<usize>>, Error> {
    if par.id() == 1 {
        std::thread::sleep(Duration::from_millis(ms));
    }
    par.gather(par.id())
}

/// `rounds` barriers, rank 1 arriving `ms` late at each: every wait is short,
/// the whole region is long.
#[parallelizer::task]
fn slow_rounds(par: &dyn Parallelizer, (rounds, ms): (u32, u64)) -> Result<u32, Error> {
    for _ in 0..rounds {
        if par.id() == 1 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        par.wait()?;
    }
    Ok(rounds)
}

#[parallelizer::task]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[parallelizer::test]
fn issue11_4_5_the_timeout_is_the_deadline_of_the_whole_run() {
    let _one = one_at_a_time();
    let limit = Duration::from_millis(1500);
    let par = timed(3, limit);
    {
        let _in = par.enter().unwrap();
        // Every wait is shorter than the timeout, the region longer: it
        // fails at the deadline, naming the late rank.
        let p = par.clone();
        let (err, took) = within(Duration::from_secs(30), move || {
            p.try_run(slow_rounds, (4, 700)).unwrap_err()
        });
        println!("4 rounds of 700 ms, timeout 1.5 s: {err} ({took:.2?})");
        assert!(matches!(err, Error::Timeout { rank: 1, .. }), "{err}");
        assert!(
            took >= limit && took < limit + Duration::from_millis(500),
            "{took:?}"
        );
        then_recovers(&par);
        // A rank asleep for 30 s: the error comes at the deadline, not after
        // the deadline plus a grace period, and names the sleeper.
        let p = par.clone();
        let (err, took) = within(Duration::from_secs(30), move || {
            p.try_run(late_rank_1, 30_000).unwrap_err()
        });
        println!("rank 1 asleep for 30 s, timeout 1.5 s: {err} ({took:.2?})");
        assert!(matches!(err, Error::Timeout { rank: 1, .. }), "{err}");
        assert!(
            took >= limit && took < limit + Duration::from_millis(500),
            "{took:?}"
        );
        then_recovers(&par);
        // A pool-style map is one deadline too: rank 1's chunk takes 3 s
        // (the static split, so that the late rank is known).
        let data: Vec<u64> = [0, 0, 1000, 1000, 1000, 0].to_vec();
        let p = par.clone();
        let (err, took) = within(Duration::from_secs(30), move || {
            p.mapper()
                .schedule(parallelizer::Schedule::Static)
                .map(sleep_ms, Some(data))
                .unwrap_err()
        });
        println!("pool-style map, rank 1 busy for 3 s, timeout 1.5 s: {err} ({took:.2?})");
        assert!(matches!(err, Error::Timeout { rank: 1, .. }), "{err}");
        assert!(
            took >= limit && took < limit + Duration::from_millis(500),
            "{took:?}"
        );
    }
    // Without a deadline a long, healthy and imbalanced computation never fails.
    let par = untimed(3);
    {
        let _in = par.enter().unwrap();
        let p = par.clone();
        let (got, took) = within(Duration::from_secs(30), move || {
            p.try_run(late_rank_1, 2500)
        });
        println!("rank 1 busy for 2.5 s, no timeout: {got:?} ({took:.2?})");
        assert_eq!(got.unwrap(), Some(vec![0, 1, 2]));
    }
    assert_no_workers_left();
}

#[parallelizer::task]
fn wrong_type(par: &dyn Parallelizer, (): ()) -> Result<Vec<String>, Error> {
    let mut errors = Vec::new();
    if par.id() == 1 {
        par.send(123456789u64, 0)?;
    }
    if par.on_main() {
        match par.receive::<i64>(1) {
            Err(Error::Codec(m)) => errors.push(m),
            other => errors.push(format!("not a codec error: {other:?}")),
        }
    }
    let v = match par.on_main() {
        true => par.broadcast_pod(Some(vec![1u32, 2])).map(|v| v.len()),
        false => par.broadcast_pod::<f32>(None).map(|v| v.len()),
    };
    if par.id() == 1 {
        let m = match v {
            Err(Error::Codec(m)) => m,
            other => format!("not a codec error: {other:?}"),
        };
        par.send(m, 0)?;
    }
    if par.on_main() {
        errors.push(par.receive::<String>(1)?);
    }
    Ok(errors)
}

#[parallelizer::test]
fn issue11_6_a_wrong_type_receive_is_a_codec_error_naming_both_types() {
    let _one = one_at_a_time();
    let par = untimed(3);
    // Workers are started on the test's thread, which names the test they run.
    let _in = par.enter().unwrap();
    let p = par.clone();
    let (got, took) = within(Duration::from_secs(20), move || p.try_run(wrong_type, ()));
    println!("wrong-type receives: {got:?} ({took:.2?})");
    let errors = got.unwrap();
    assert!(
        errors[0].contains("i64") && errors[0].contains("u64"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("f32") && errors[1].contains("u32"),
        "{}",
        errors[1]
    );
    drop(_in);
    assert_no_workers_left();
}

#[parallelizer::task]
fn sparse_memfd_to_main(par: &dyn Parallelizer, (): ()) -> Result<Option<Vec<u8>>, Error> {
    if par.id() == 1 {
        // Its part of the gather: 512 GiB of plain data in a sealed memfd
        // with no page behind it.
        parallelizer::backend::processes::__inject_sparse_memfd(0, 512 << 30)?;
        return Ok(None);
    }
    par.gather_pod(vec![par.id() as u8])
}

#[parallelizer::test]
fn issue11_7_a_sparse_memfd_announcing_512_gib_is_refused_unmapped() {
    let _one = one_at_a_time();
    let par = untimed(3);
    {
        let _in = par.enter().unwrap();
        let p = par.clone();
        let (err, took) = within(Duration::from_secs(20), move || {
            p.try_run(sparse_memfd_to_main, ()).unwrap_err()
        });
        println!("a sparse memfd of 512 GiB sent to main: {err} ({took:.2?})");
        assert!(
            matches!(&err, Error::Codec(m) if m.contains("from rank 1") && m.contains("sparse")),
            "{err}"
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        then_recovers(&par);
    }
    assert_no_workers_left();
}

#[parallelizer::test]
fn issue11_10_many_workers_under_a_low_descriptor_limit() {
    let _one = one_at_a_time();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    let saved = limit;
    // 12 ranks: 132 socket ends if main made them all at once. The other
    // tests of this binary keep room for what they open meanwhile.
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    limit.rlim_cur = open + 48;
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    let got = std::panic::catch_unwind(|| untimed(12).run(gather_order, ()));
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &saved) };
    let got = got.unwrap();
    println!(
        "12 ranks under a soft limit of {} descriptors: {:?}",
        open + 48,
        got.as_ref().map(|v| v.as_ref().map(Vec::len))
    );
    assert_eq!(got.unwrap().map(|v| v.len()), Some(12));
    assert_no_workers_left();
}

/// What a program started by a task sees of the launch: the launch variable
/// and its open descriptors.
#[parallelizer::task]
fn grandchild_view(par: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "printf '%s\\n' \"$PARALLELIZER_PROCESSES_LAUNCH\"; ls -l /proc/$$/fd",
        ])
        .output()
        .unwrap();
    par.gather(String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap()
}

#[parallelizer::test]
fn issue11_10_programs_started_by_a_task_do_not_inherit_the_launch_token() {
    let _one = one_at_a_time();
    let views = untimed(3).run(grandchild_view, ()).unwrap().unwrap();
    for view in &views[1..] {
        println!("a worker's child sees: {view:?}");
        // The token is 16 random bytes; in hex, 32 characters in a row.
        let longest_hex = view
            .split(|c: char| !c.is_ascii_hexdigit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest_hex < 32, "{view}");
        assert!(!view.contains("parallelizer"), "{view}");
        // The boot channel was on the worker's standard input; by the time
        // a task runs, that is `/dev/null` again.
        assert!(view.contains(" 0 -> /dev/null"), "{view}");
    }
    assert_no_workers_left();
}

#[test]
fn issue11_10_unknown_options_and_huge_values_are_short_config_errors() {
    let config = Config::new("processes").nprocs(2).option("shm_treshold", 1);
    let err = parallelizer::from_config(&config).unwrap_err();
    println!("a misspelled option: {err}");
    assert!(
        matches!(&err, Error::Config(m) if m.contains("unknown option `shm_treshold`")
            && m.contains("grace, lend, max_frame, prefix_output, rings, shm_threshold, start_timeout")),
        "{err}"
    );
    let config = Config::new("processes").option("grace", "x".repeat(1 << 20));
    let err = parallelizer::from_config(&config).unwrap_err().to_string();
    println!("a 1 MiB option value: {} bytes of error", err.len());
    assert!(err.len() < 300, "{} bytes", err.len());
}
