//! Fault injection for the MPI backend: rank 1 panics while the other ranks
//! wait for it in a collective. The job must end (MPI_Abort) with a
//! non-zero status, the rank and the message on stderr, instead of hanging.
//!
//! ```text
//! mpirun -n 4 target/debug/examples/mpi_fault region   # panic inside a region
//! mpirun -n 4 target/debug/examples/mpi_fault main     # SPMD: panic in main itself
//! mpirun -n 4 target/debug/examples/mpi_fault main0    # rank 0 panics in main
//! mpirun -n 4 target/debug/examples/mpi_fault main_err # main's own task fails
//! PARALLELIZER_MPI_SERVE=0 mpirun -n 4 target/debug/examples/mpi_fault leave
//!                         # SPMD: ranks 1.. return from main, rank 0 runs a region
//! ```
//!
//! With the ULFM extension (Open MPI 5, `mpirun --with-ft ulfm`) a failure
//! inside a region is an error and the job goes on: `region` prints rank
//! 0's `WorkerPanicked`, `main_err` its `TaskFailed { rank: 0 }`. Without
//! it both end the job with the failed rank's message. `leave` gives rank 0
//! an error naming the rank that left, on both.

use parallelizer::prelude::*;

#[parallelizer::task]
fn panics_on_one(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    if par.id() == 1 {
        panic!("injected failure on rank 1");
    }
    // Everyone else waits for rank 1 here.
    par.gather(par.id()).unwrap()
}

/// Main fails while the workers wait for it in a gather.
#[parallelizer::task]
fn main_fails(par: &dyn Parallelizer, (): ()) -> Result<Option<Vec<usize>>, String> {
    if par.on_main() {
        std::thread::sleep(std::time::Duration::from_millis(100));
        return Err("injected error on main".into());
    }
    par.gather(par.id()).map_err(|e| e.to_string())
}

/// Every rank's id, on main.
#[parallelizer::task]
fn ids(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    par.gather(par.id()).unwrap()
}

#[parallelizer::main]
fn main() {
    let par = parallelizer::from_config("mpi").expect("mpi");
    match std::env::args().nth(1).as_deref().unwrap_or("region") {
        "region" => {
            let got = par.run(panics_on_one, ());
            println!("rank {} returned {got:?}", par.id());
        }
        "main" => {
            // SPMD only: every rank runs this.
            if par.id() == 1 {
                panic!("injected failure in main on rank 1");
            }
            let got = par.gather(par.id());
            println!("rank {} returned {got:?}", par.id());
        }
        "main0" => {
            // Served: rank 0 panics in main while the workers serve.
            if par.id() == 0 {
                panic!("injected failure in main on rank 0");
            }
        }
        "main_err" => {
            let got = par.try_run(main_fails, ());
            println!("rank {} returned {got:?}", par.id());
            // The next region works.
            let next = par.run(ids, ());
            println!("rank {} next run {next:?}", par.id());
        }
        "leave" => {
            // SPMD only: the workers leave main at once.
            if par.id() != 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
            let got = par.run(ids, ());
            println!("rank 0 returned {got:?}");
        }
        other => {
            panic!("unknown fault `{other}`; use `region`, `main`, `main0`, `main_err` or `leave`")
        }
    }
}
