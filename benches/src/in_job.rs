//! Raw rsmpi's small calls in the job of ours (feature `mpi`): a barrier,
//! an 8 B or 1 KiB ping-pong and an allreduce of one `f64` on
//! `COMM_WORLD`, each a region of its own right after ours, at the thread
//! level the backend asked for. `mpirun` places the ranks of each job
//! anew and these calls swing up to 2.5× from one job to the next, which
//! separate jobs of raw rsmpi and ours cannot tell from the code; in one
//! job they meet the same placement.

use mpi::collective::SystemOperation;
use mpi::traits::*;
use parallelizer::Parallelizer;

use crate::data::ReduceArgs;
use crate::measure::{Iters, time, time_with};
use crate::tasks::PingArgs;

/// `MPI_Barrier` on `COMM_WORLD`, timed on main: the baseline of an empty
/// region's dispatch.
#[parallelizer::task]
pub fn raw_barrier(p: &dyn Parallelizer, iters: Iters) -> Option<f64> {
    let world = mpi::topology::SimpleCommunicator::world();
    let t = time(iters, || world.barrier());
    p.on_main().then_some(t)
}

/// `MPI_Send`/`MPI_Recv` ping-pong of `bytes` between ranks 0 and 1 on one
/// buffer, as [`pingpong_into`](crate::tasks::pingpong_into) times ours:
/// main returns the median one-way time.
#[parallelizer::task]
pub fn raw_pingpong(p: &dyn Parallelizer, a: PingArgs) -> Option<f64> {
    let world = mpi::topology::SimpleCommunicator::world();
    let mut buf: Vec<u8> = parallelizer::plain_buffer(a.bytes);
    buf.fill(1);
    let round_trip = time(a.iters, || match p.id() {
        0 => {
            world.process_at_rank(1).send(&buf[..]);
            world.process_at_rank(1).receive_into(&mut buf[..]);
        }
        1 => {
            world.process_at_rank(0).receive_into(&mut buf[..]);
            world.process_at_rank(0).send(&buf[..]);
        }
        _ => {}
    });
    assert!(buf.iter().all(|&b| b == 1));
    p.on_main().then_some(round_trip / 2.0)
}

/// `MPI_Allreduce` of one `f64` with `MPI_SUM`, after an untimed barrier,
/// as [`allreduce_task`](crate::data::allreduce_task) times ours.
#[parallelizer::task]
pub fn raw_allreduce(p: &dyn Parallelizer, a: ReduceArgs) -> Option<f64> {
    let world = mpi::topology::SimpleCommunicator::world();
    let mut x = p.id() as f64;
    let t = time_with(
        a.iters,
        || world.barrier(),
        |()| {
            let mut sum = 0.0f64;
            world.all_reduce_into(&x, &mut sum, SystemOperation::sum());
            x = sum * 0.5;
        },
    );
    std::hint::black_box(x);
    p.on_main().then_some(t)
}
