//! The main example: the McUtils map workload (the test `test_MapMultiprocessing`
//! in `ci/tests/ParallelizersTests.py` of <https://github.com/McCoyGroup/McUtils>) on
//! the serial fallback and on every core with the threads backend, with the
//! results compared and timed.
//!
//! For each 9-combination `c` of `0..12` and each of its 9! permutations,
//! `mapped_func` emits `len(c) + sum(c)`: 79,833,600 values. Smaller sizes:
//! `cargo run --release --example mcutils_map -- 10 7`.

#[path = "../tests/common/workload.rs"]
mod workload;

use std::time::Instant;

use parallelizer::prelude::*;

/// McUtils `map_applier`: main builds the combinations, every rank maps its
/// contiguous chunk (vectorized), main gets the flat result in order.
fn map_applier(par: &dyn Parallelizer, (n, r): (u8, u8)) -> Option<Vec<u32>> {
    let data = par.on_main().then(|| workload::combinations(n, r));
    par.map_chunks(workload::mapped_func, data).unwrap()
}

fn main() -> Result<()> {
    let args: Vec<u8> = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u8>().expect("usage: [N R]"))
        .collect();
    let (n, r) = match args[..] {
        [n, r] => (n, r),
        [] => (12, 9),
        _ => panic!("usage: mcutils_map [N R]"),
    };
    println!("McUtils map workload: mapped_func over combinations({n}, {r})");
    let mut results = Vec::new();
    for spec in ["serial".to_string(), "threads".to_string()] {
        let par = from_config(spec.as_str())?;
        let _entered = par.enter()?; // start the workers outside the timing
        let start = Instant::now();
        let out = par.run(map_applier, (n, r))?.expect("main gets the result");
        let secs = start.elapsed().as_secs_f64();
        let sum = workload::checksum(&out);
        println!(
            "{:>8} ({} rank{}): {} values, first {:?}, last {:?}, checksum {sum}, {secs:.3} s",
            par.mode(),
            par.nprocs(),
            if par.nprocs() == 1 { "" } else { "s" },
            out.len(),
            out.first(),
            out.last(),
        );
        results.push((out, secs));
    }
    let (serial, threads) = (&results[0], &results[1]);
    assert_eq!(serial.0, threads.0, "threads must equal serial, in order");
    println!(
        "identical results; threads speed-up over serial: {:.2}x",
        serial.1 / threads.1
    );
    Ok(())
}
