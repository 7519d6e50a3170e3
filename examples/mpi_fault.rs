//! Fault injection for the MPI backend: rank 1 panics while the other ranks
//! wait for it in a collective. The job must end (MPI_Abort) with a
//! non-zero status, the rank and the message on stderr, instead of hanging.
//!
//! ```text
//! mpirun -n 4 target/debug/examples/mpi_fault region   # panic inside a region
//! mpirun -n 4 target/debug/examples/mpi_fault main     # SPMD: panic in main itself
//! mpirun -n 4 target/debug/examples/mpi_fault main0    # rank 0 panics in main
//! ```

use parallelizer::prelude::*;

#[parallelizer::task]
fn panics_on_one(par: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    if par.id() == 1 {
        panic!("injected failure on rank 1");
    }
    // Everyone else waits for rank 1 here.
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
        other => panic!("unknown fault `{other}`; use `region`, `main` or `main0`"),
    }
}
