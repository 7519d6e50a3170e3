//! Shared arrays on a job whose ranks sit on two nodes. `.ci/mpi.sh` runs
//! the suite as `mpi_suite two-nodes` on a simulated job: a hostfile with a
//! second host name, whose ranks a launch agent starts on this machine in a
//! UTS namespace of their own (so they see that host name), TCP only. The
//! documented behaviour (README "Shared memory"): ranks on main's node map
//! the array; a rank on the other node that receives a handle gets an error
//! naming both nodes, never memory, and can go on (here: it reports the
//! error in its result; a rank that fails its region on it is a rank
//! failure like any other, see README "Failure").

use std::sync::{Arc, Mutex};

use parallelizer::backend::segments_in_use;
use parallelizer::prelude::*;
use parallelizer::{Array, SharedArray};

use super::{Suite, eq};

/// The array main shared before the region: only main's process holds it
/// (a task is a plain fn, so main's part finds it here).
static STASH: Mutex<Option<SharedArray<f64>>> = Mutex::new(None);

/// This process's host name, as the kernel's UTS namespace gives it.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[parallelizer::task]
fn hosts(p: &dyn Parallelizer, (): ()) -> Option<Vec<String>> {
    p.gather(host()).unwrap()
}

/// Main sends its shared array to every other rank; each sums what it
/// receives or reports the receive's error.
#[parallelizer::task]
fn deliver(p: &dyn Parallelizer, (): ()) -> Option<Vec<Result<f64, String>>> {
    let mine = if p.on_main() {
        let stash = STASH
            .lock()
            .unwrap()
            .clone()
            .expect("main stashed an array");
        for to in 1..p.nprocs() {
            p.send(stash.clone(), to).unwrap();
        }
        Ok(stash.read().unwrap().iter().sum())
    } else {
        p.receive::<SharedArray<f64>>(0)
            .map(|s| s.read().unwrap().iter().sum())
            .map_err(|e| e.to_string())
    };
    p.gather(mine).unwrap()
}

#[parallelizer::task]
fn in_use(p: &dyn Parallelizer, (): ()) -> Option<Vec<usize>> {
    p.gather(segments_in_use()).unwrap()
}

/// The two-node checks (served model: main shares alone, outside a region).
pub(super) fn suite(par: &Arc<dyn Parallelizer>, suite: &mut Suite) {
    let p = par.nprocs();
    let e = |e: Error| e.to_string();
    if par.in_region() {
        suite.check("two nodes: needs the served model", || {
            Err("run with PARALLELIZER_MPI_SERVE=1".to_string())
        });
        return;
    }
    let names = match par.run(hosts, ()) {
        Ok(Some(names)) => names,
        other => {
            suite.check("two nodes: host names", || Err(format!("{other:?}")));
            return;
        }
    };
    let main_host = names[0].clone();
    let far: Vec<usize> = (0..p).filter(|&r| names[r] != main_host).collect();
    suite.check("two nodes: the job spans two host names", || {
        if far.is_empty() || far.len() == p {
            return Err(format!("host names per rank {names:?}: want two nodes"));
        }
        Ok(())
    });
    let values = vec![1.0, 2.0, 3.0];
    let total: f64 = values.iter().sum();
    let shared = match par.share(Array::new([3], values).unwrap()) {
        Ok(s) => s,
        Err(err) => {
            suite.check("two nodes: share on main", || Err(err.to_string()));
            return;
        }
    };
    suite.check(
        "two nodes: a handle sent to each rank: mapped on main's node, refused by name on the other",
        || {
            *STASH.lock().unwrap() = Some(shared.clone());
            let got = par.run(deliver, ()).map_err(e);
            *STASH.lock().unwrap() = None;
            let got = got?.ok_or("main got no results")?;
            for (rank, result) in got.iter().enumerate() {
                let far_rank = names[rank] != main_host;
                match result {
                    Ok(sum) if !far_rank => eq(&format!("rank {rank}'s sum"), *sum, total)?,
                    Err(msg)
                        if far_rank
                            && msg.contains(&format!("made on node `{main_host}`"))
                            && msg.contains(&format!("reached a rank on node `{}`", names[rank]))
                            && msg.contains("unshare") => {}
                    other => {
                        return Err(format!(
                            "rank {rank} on {} (main on {main_host}): {other:?}",
                            names[rank]
                        ));
                    }
                }
            }
            Ok(())
        },
    );
    drop(shared);
    suite.check("two nodes: nothing left on any rank", || {
        eq(
            "segments",
            par.run(in_use, ()).map_err(e)?,
            Some(vec![0; p]),
        )
    });
}
