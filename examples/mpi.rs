//! The McUtils map workload (`test_MapMultiprocessing` in McCoyGroup/McUtils,
//! `ci/tests/ParallelizersTests.py`) on any backend, MPI by
//! default: for every 9-combination `c` of `0..12` and every one of its 9!
//! permutations (Heap's algorithm, really enumerated), emit
//! `len(c) + sum(permutation)`. 79,833,600 values; first 45, last 72, total
//! 4,670,265,600.
//!
//! ```text
//! cargo build --release --features mpi --example mpi
//! mpirun -n 4 target/release/examples/mpi            # MPI, 12 choose 9
//! target/release/examples/mpi 12 9 serial            # the same checksum, serially
//! mpirun -n 2 target/release/examples/mpi 8 5 mpi    # smaller: N R [SPEC]
//! ```
//! SPEC is any parallelizer spec (`mpi`, `serial`, `threads:4`).

use std::time::Instant;

use parallelizer::prelude::*;

#[path = "../tests/common/workload.rs"]
mod workload;

use workload::{combinations, mapped_func};

/// McUtils' `map_applier`: main builds the combinations, each rank maps its
/// chunk, main gets the flat result in input order. The results come back
/// as plain data (one MPI gather-v, no serialization).
#[parallelizer::task]
fn map_applier(par: &dyn Parallelizer, (n, r): (u8, u8)) -> Option<Vec<u32>> {
    let combos = par.on_main().then(|| combinations(n, r));
    let mine = par.scatter(combos).unwrap();
    par.gather_pod(mapped_func(mine)).unwrap()
}

#[parallelizer::main]
fn main() -> parallelizer::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u8 = args
        .get(1)
        .map_or(12, |s| s.parse().expect("N: a number up to 255"));
    let r: u8 = args
        .get(2)
        .map_or(9, |s| s.parse().expect("R: a number up to 255"));
    let spec = args.get(3).map_or("mpi", String::as_str);
    let par = parallelizer::from_config(spec)?;
    let start = Instant::now();
    let result = par.run(map_applier, (n, r))?;
    let elapsed = start.elapsed();
    if let Some(values) = result {
        let total = workload::checksum(&values);
        // FNV-1a over the values in order: equal only if the order is too.
        let fnv = values.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &v| {
            (h ^ u64::from(v)).wrapping_mul(0x0100_0000_01b3)
        });
        println!(
            "checksum: n={n} r={r} count={} first={} last={} total={total} fnv={fnv:016x}",
            values.len(),
            values.first().map_or(-1, |&v| i64::from(v)),
            values.last().map_or(-1, |&v| i64::from(v)),
        );
        println!(
            "mode={} ranks={} time={:.3}s",
            par.mode(),
            par.nprocs(),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
