//! The shared SPMD suite (`tests/common`, also run by `local_modes.rs` on
//! serial and threads) on `processes` with 2, 3 and 4 ranks: every result
//! must equal serial's, or the reference table where it depends on the
//! number of ranks. Each test re-executes this binary as its workers
//! (`#[parallelizer::test]`), under `cargo test` and `cargo nextest run`.
//! Each test holds `spawns()`, so that no test of `processes` (which counts
//! this process's workers) runs meanwhile.

use crate::common::procs::spawns;
use crate::common::*;
use parallelizer::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn processes(n: usize) -> Arc<dyn Parallelizer> {
    from_config(
        Config::new("processes")
            .nprocs(n)
            .timeout(Duration::from_secs(60)),
    )
    .unwrap()
}

spmd_suite!(processes, [2, 3, 4], table_up_to = 5, hold = spawns());
data_suite!(processes, [2, 3, 4], hold = spawns());
parity_suite!(processes, hold = spawns());

#[parallelizer::test]
fn closures_cannot_cross_the_process_boundary() {
    let _spawns = spawns();
    for par in modes() {
        // A closure cannot cross the process boundary.
        assert!(matches!(
            par.map(|x: i64| x + 1, Some(vec![1])),
            Err(Error::TaskNotRegistered { .. })
        ));
        // Nor into a pool-style map_reduce, whose error names it.
        let closure = par.map_reduce(|x: i64| x + 1, Some(vec![1]), parallelizer::Reduce::Sum);
        match closure {
            Err(Error::TaskNotRegistered { task }) => {
                assert!(task.contains("{{closure}}"), "{task}")
            }
            other => panic!("expected TaskNotRegistered, got {other:?}"),
        }
    }
}
