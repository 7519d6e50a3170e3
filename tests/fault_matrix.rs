//! The fault matrix (issue 11): faults {panic, `Err`, `exit(3)`, SIGKILL,
//! sleep past the deadline} on rank 2 of 4, during {send/receive with rank
//! 2, a send of 16 MiB to rank 2 from main, the same from rank 1, broadcast,
//! scatter, gather, map, wait, a gather and broadcast in a subgroup of
//! ranks 1-3}, on threads, processes and
//! (under `mpirun`) MPI. The cells are `tests/common/faults.rs`.
//!
//! Each cell asserts that main gets the typed error naming rank 2 within
//! 1 s of the fault (1 s after the deadline for the sleep cell), that the
//! next `run` works, and (processes) that no worker process is left once
//! the parallelizer is dropped. On threads, `exit` and SIGKILL end the whole
//! process (the ranks are threads of it): documented, not run.
//!
//! `harness = false`: `main` is the program (with `#[parallelizer::main]`,
//! so the processes backend's workers serve the registered cells). It
//! prints each matrix as a table and `N passed, M failed`, and exits
//! non-zero on a failure. Speaks enough of libtest's command line for
//! `cargo nextest run` (`--list`).
//!
//! MPI (`--features mpi`, run by `.ci/mpi.sh`): with `FAULT_MATRIX_MPI=1`
//! under `mpirun -n 4` (served model), rank 0 runs the cells named on the
//! command line (`panic:gather err:map ...`) in this one job and prints a
//! line per cell (`cell panic gather ok 0.25s | ...`). With ULFM the job
//! survives every cell (a death shrinks it, so death cells run in jobs of
//! their own); without ULFM the first cell ends the job (`MPI_Abort`),
//! which the script checks from the outside.

use std::time::Duration;

use parallelizer::prelude::*;

mod common;

use common::faults::{self, Cell, DEADLINE, Fault, Step};

#[parallelizer::main]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("fault_matrix: test");
        }
        return;
    }
    // The cells time how soon main hears of a panic; a debug build's
    // symbolised backtrace (RUST_BACKTRACE=1 in the caller's environment)
    // takes a rank most of a second to print before it reports, which
    // would measure the backtrace, not the framework (.ci/mpi.sh unsets it
    // for the same reason). Workers inherit the setting.
    // SAFETY: the first statement that can matter of a single-threaded
    // program: no other thread exists yet to read the environment.
    unsafe { std::env::set_var("RUST_BACKTRACE", "0") };
    #[cfg(feature = "mpi")]
    if std::env::var("FAULT_MATRIX_MPI").is_ok_and(|v| v == "1") {
        std::process::exit(mpi_cells(&args));
    }
    let mut all = Vec::new();
    let threads = threads_matrix();
    println!(
        "{}",
        faults::table(
            "fault matrix: threads:4 (timeout 1 s)",
            &threads,
            &[
                (
                    Fault::Exit,
                    "ends the whole process (the ranks are its threads)"
                ),
                (
                    Fault::Kill,
                    "ends the whole process (the ranks are its threads)"
                ),
            ],
        )
    );
    all.extend(threads);
    #[cfg(target_os = "linux")]
    {
        let processes = processes_matrix();
        println!(
            "{}",
            faults::table("fault matrix: processes:4 (timeout 1 s)", &processes, &[])
        );
        all.extend(processes);
    }
    let failed: Vec<&Cell> = all.iter().filter(|c| !c.passed()).collect();
    for c in &failed {
        println!(
            "FAIL {} in {}: after {:.2?}: {}",
            c.fault.name(),
            c.step.name(),
            c.took,
            c.detail()
        );
    }
    println!(
        "{} passed, {} failed",
        all.len() - failed.len(),
        failed.len()
    );
    std::process::exit(i32::from(!failed.is_empty()));
}

/// A guard that ends this program if a cell hangs (`limit` past its
/// start), so `cargo test` reports a failure instead of waiting forever.
struct Hang(std::sync::mpsc::Sender<()>);

fn hang_guard(what: String, limit: Duration) -> Hang {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            println!("FAIL {what}: still running after {limit:?}; giving up");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    });
    Hang(tx)
}

impl Drop for Hang {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

const HANG: Duration = Duration::from_secs(30);

/// Threads: panic, `Err` and sleep; one parallelizer for all cells (each
/// failure must leave it working).
fn threads_matrix() -> Vec<Cell> {
    let config = Config::new("threads").nprocs(4).timeout(DEADLINE);
    let par = parallelizer::from_config(&config).unwrap();
    let _entered = par.enter().unwrap();
    let mut cells = Vec::new();
    for fault in [Fault::Panic, Fault::Err, Fault::Sleep] {
        for step in Step::ALL {
            let _hang = hang_guard(format!("threads {fault:?} {step:?}"), HANG);
            cells.push(faults::check(&*par, fault, step));
        }
    }
    cells
}

/// Processes: every fault; a fresh parallelizer per cell, dropped after it,
/// so the cell can check that no worker process is left.
#[cfg(target_os = "linux")]
fn processes_matrix() -> Vec<Cell> {
    let config = Config::new("processes").nprocs(4).timeout(DEADLINE);
    let mut cells = Vec::new();
    for fault in Fault::ALL {
        for step in Step::ALL {
            let _hang = hang_guard(format!("processes {fault:?} {step:?}"), HANG);
            let mut cell = {
                let par = parallelizer::from_config(&config).unwrap();
                let _entered = par.enter().unwrap();
                faults::check(&*par, fault, step)
            };
            let left = leftover_children(Duration::from_secs(2));
            if !left.is_empty() && cell.next.is_ok() {
                cell.next = Err(format!("worker processes left: {left:?}"));
            }
            cells.push(cell);
        }
    }
    cells
}

/// This process's children still there after `within` (zombies are
/// reaped by the backend, so they count).
#[cfg(target_os = "linux")]
fn leftover_children(within: Duration) -> Vec<i32> {
    let until = std::time::Instant::now() + within;
    loop {
        let left = common::procs::children();
        if left.is_empty() || std::time::Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// MPI: rank 0 of a served job runs the cells named in `args`
/// (`fault:step`), printing a line per cell; returns the exit status.
#[cfg(feature = "mpi")]
fn mpi_cells(args: &[String]) -> i32 {
    // Without ULFM a failed rank waits `abort_grace_ms` for the others
    // before it ends the job: half a second here (1 s by default), so the
    // job ends well within the 2 s the matrix allows after the fault.
    let config = Config::new("mpi")
        .timeout(DEADLINE)
        .option("abort_grace_ms", 500);
    let par = parallelizer::from_config(&config).expect("mpi parallelizer");
    let _entered = par.enter().unwrap();
    // A second handle on the same MPI world, to ask it about itself.
    let mpi = parallelizer::backend::Mpi::new(config.clone()).expect("mpi");
    println!(
        "fault_matrix: mpi, {} ranks, {}, fault tolerant: {}",
        par.nprocs(),
        mpi.library(),
        mpi.fault_tolerant()
    );
    let mut failed = 0;
    for arg in args.iter().filter(|a| a.contains(':')) {
        let (f, s) = arg.split_once(':').unwrap();
        let (Some(fault), Some(step)) = (Fault::from_key(f), Step::from_key(s)) else {
            println!(
                "cell {arg}: unknown (faults: panic err exit kill sleep; steps: p2p large peer broadcast scatter gather map wait subgroup)"
            );
            failed += 1;
            continue;
        };
        // When the cell starts, for a script that sees the job end.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        println!(
            "cell-start {} {} {}",
            fault.key(),
            step.key(),
            now.as_millis()
        );
        let start = std::time::Instant::now();
        let cell = faults::check(&*par, fault, step);
        let ok = cell.passed();
        failed += usize::from(!ok);
        println!(
            "cell {} {} {} {:.2}s | {} ({:.2?} in all)",
            fault.key(),
            step.key(),
            if ok { "ok" } else { "FAIL" },
            cell.took.as_secs_f64(),
            cell.detail(),
            start.elapsed()
        );
    }
    i32::from(failed > 0)
}
