//! A host program that owns MPI (initializes and finalizes it with rsmpi)
//! and uses the `mpi` parallelizer next to its own MPI calls. SPMD: every
//! rank runs `main`.
//!
//! ```text
//! mpirun -n 2 target/debug/examples/mpi_host
//! ```

use parallelizer::backend::mpi::rsmpi;
use parallelizer::prelude::*;
use rsmpi::traits::*;

fn main() {
    let universe = rsmpi::initialize().expect("the host initializes MPI first");
    let world = universe.world();
    let par = parallelizer::from_config("mpi").expect("joins the host's MPI");
    assert_eq!(par.nprocs(), world.size() as usize);
    assert_eq!(par.id(), world.rank() as usize);

    // The host's own collective, then the parallelizer's, then the host's
    // again: the backend works on its own communicators.
    let mut token = if world.rank() == 0 { 42u64 } else { 0 };
    world.process_at_rank(0).broadcast_into(&mut token);
    let ids = par
        .run(
            |p: &dyn Parallelizer, t: u64| p.gather(p.id() as u64 + t).unwrap(),
            token,
        )
        .expect("region");
    let mut total = 0u64;
    world.all_reduce_into(
        &(world.rank() as u64),
        &mut total,
        rsmpi::collective::SystemOperation::sum(),
    );
    if par.on_main() {
        let n = par.nprocs() as u64;
        assert_eq!(ids, Some((0..n).map(|r| r + 42).collect()));
        assert_eq!(total, n * (n - 1) / 2);
        println!("host-initialized MPI: ok ({n} ranks)");
    }
    // The host finalizes MPI.
    drop(universe);
}
