//! The McUtils map workload (`test_MapMultiprocessing` in McCoyGroup/McUtils,
//! `ci/tests/ParallelizersTests.py`) on the `processes`
//! backend: for every 9-element combination `c` of `0..12` and every one of
//! its 9! permutations `p` (enumerated for real, with Heap's algorithm),
//! emit `len(p) + sum(p)`. 220 combinations x 362,880 permutations =
//! 79,833,600 values; first 45, last 72, total 4,670,265,600.
//!
//! ```text
//! cargo run --release --example processes                 # all cores, n = 12, r = 9
//! cargo run --release --example processes -- 4 8 5        # 4 ranks, n = 8, r = 5
//! cargo run --release --example processes -- 2 12 9 --compare   # also run serial
//! cargo run --release --example processes -- 4 --bcast 100       # 100 MB broadcast: lent vs memfd vs sockets
//! ```
//!
//! Main scatters the combinations, each rank maps its chunk
//! (`map_chunks`, McUtils' `vectorized=True`), main gathers in rank order.
//! The task runs on workers by name (`#[parallelizer::task]` registers it at
//! link time), and `#[parallelizer::main]` makes a worker process serve
//! tasks instead of running the body of `main`.

use std::time::Instant;

use parallelizer::prelude::*;

#[path = "../tests/common/workload.rs"]
mod workload;

use workload::{checksum, combinations, mapped_func};

/// The region every rank runs: main passes the combinations, each rank maps
/// its contiguous chunk, main gets the flat result in input order.
#[parallelizer::task]
fn map_applier(par: &dyn Parallelizer, (n, r): (u8, u8)) -> Option<Vec<u32>> {
    let combos = par.on_main().then(|| combinations(n, r));
    par.map_chunks(mapped_func, combos).unwrap()
}

/// Broadcasts `mb` MB of plain data `reps` times; every rank checks a byte.
#[parallelizer::task]
fn bcast_bench(par: &dyn Parallelizer, (mb, reps): (usize, u32)) -> f64 {
    let t = Instant::now();
    for i in 0..reps {
        let data = par.on_main().then(|| vec![i as u8; mb << 20]);
        let got = par.broadcast_pod(data).unwrap();
        assert_eq!((got.len(), got[mb << 19]), (mb << 20, i as u8));
    }
    par.wait().unwrap();
    t.elapsed().as_secs_f64() / f64::from(reps)
}

fn report(label: &str, out: &[u32], secs: f64) {
    let total = checksum(out);
    println!(
        "{label}: {} values, first {:?}, last {:?}, total {total}, {secs:.3} s",
        out.len(),
        out.first(),
        out.last(),
    );
}

#[parallelizer::main]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let compare = args.iter().any(|a| a == "--compare");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let nprocs = nums.first().copied().unwrap_or(cores);
    let (n, r) = match nums.get(1..3) {
        Some(&[n, r]) => (n as u8, r as u8),
        _ => (12, 9),
    };

    if let Some(i) = args.iter().position(|a| a == "--bcast") {
        // cargo run --release --example processes -- 4 --bcast 100
        let mb: usize = args.get(i + 1).and_then(|a| a.parse().ok()).unwrap_or(100);
        let ways = [
            ("a loan (process_vm_readv)", true, 1usize << 20),
            ("memfd", false, 1 << 20),
            ("sockets", false, usize::MAX),
        ];
        for (label, lend, threshold) in ways {
            let config = Config::new("processes")
                .nprocs(nprocs)
                .option("lend", lend)
                .option("shm_threshold", threshold);
            let par = parallelizer::from_config(config).unwrap();
            let secs = par.run(bcast_bench, (mb, 5)).unwrap();
            println!(
                "broadcast of {mb} MB to {} workers via {label}: {:.1} ms",
                nprocs - 1,
                secs * 1e3
            );
        }
        return;
    }
    let par = parallelizer::from_config(Config::new("processes").nprocs(nprocs)).unwrap();
    let _entered = par.enter().unwrap(); // workers start here
    let t = Instant::now();
    let out = par.run(map_applier, (n, r)).unwrap().unwrap();
    report(
        &format!("processes:{nprocs} n={n} r={r}"),
        &out,
        t.elapsed().as_secs_f64(),
    );
    if (n, r) == (12, 9) {
        assert_eq!(out.len(), 79_833_600);
        assert_eq!((out[0], out[out.len() - 1]), (45, 72));
        assert_eq!(checksum(&out), 4_670_265_600);
    }
    if compare {
        let t = Instant::now();
        let serial = parallelizer::from_config("serial")
            .unwrap()
            .run(map_applier, (n, r))
            .unwrap()
            .unwrap();
        report("serial", &serial, t.elapsed().as_secs_f64());
        assert_eq!(serial, out, "processes and serial differ");
        println!("identical to serial");
    }
}
