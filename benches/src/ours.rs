//! Our figures: every workload through the public API of one parallelizer,
//! and the in-process baselines (rayon, serial loop, memcpy, raw sockets).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parallelizer::{Parallelizer, Schedule};
use rayon::prelude::*;

use crate::data;
use crate::measure::{Iters, time, time_batched, time_with};
use crate::plan::{self, Figures, Plan};
use crate::rawsock::{self, SockWorld};
use crate::tasks::{self, CollArgs, Kind, MapArgs, Op, PingArgs};
use crate::workloads::{
    Imbalance, combinations, f64_data, fine_work, mapped_func, string_data, wait_item,
};

/// Records `f`'s figure under `key`, or why there is none (an error or a
/// panic becomes a string in the results instead of ending the suite).
pub fn record(figs: &mut Figures, key: String, f: impl FnOnce() -> Result<f64, String>) {
    let v = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => serde_json::Value::from(v),
        Ok(Err(e)) => format!("failed: {e}").into(),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            format!("panicked: {msg}").into()
        }
    };
    figs.insert(key, v);
}

fn main_result(r: parallelizer::Result<Option<f64>>) -> Result<f64, String> {
    match r {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err("main returned no figure".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The ping-pong rows on `par` (2 ranks), one per message size.
pub fn measure_pingpong(
    par: &Arc<dyn Parallelizer>,
    plan: &Plan,
    figs: &mut Figures,
    log: &dyn Fn(&str),
) {
    log(&format!("{} x{}: ping-pong", par.mode(), par.nprocs()));
    for &bytes in &plan.pp_bytes {
        let iters = plan.iters_for(bytes);
        record(figs, plan::k_pp(bytes), || {
            main_result(par.run(tasks::pingpong, PingArgs { bytes, iters }))
        });
        record(figs, plan::k_pp_into(bytes), || {
            main_result(par.run(tasks::pingpong_into, PingArgs { bytes, iters }))
        });
        // Where the host put the CPUs just then (`cores`); it changes
        // within seconds on a VM.
        if let Some(rtt) = crate::cores::line_round_trip() {
            figs.insert(plan::k_line_rtt(bytes), rtt.into());
        }
    }
}

/// Every workload on `par` (already built with its rank count). Keys carry
/// `par.nprocs()`; ping-pong runs only with 2 ranks.
pub fn measure_backend(
    par: &Arc<dyn Parallelizer>,
    plan: &Plan,
    figs: &mut Figures,
    log: &dyn Fn(&str),
) {
    let p = par.nprocs();
    let _entered = match par.enter() {
        Ok(g) => g,
        Err(e) => {
            figs.insert(plan::k_dispatch(p), format!("failed: enter: {e}").into());
            return;
        }
    };
    log(&format!("{} x{p}: dispatch", par.mode()));
    measure_dispatch(par, plan, figs);
    if p == 2 {
        measure_pingpong(par, plan, figs, log);
    }
    if p > 1 {
        log(&format!("{} x{p}: collectives", par.mode()));
        for op in Op::ALL {
            for kind in Kind::ALL {
                for n in coll_sizes(plan, kind) {
                    let iters = plan.iters_for(coll_bytes(kind, n));
                    record(figs, plan::k_coll(op.key(), kind.key(), n, p), || {
                        main_result(par.run(tasks::collective, CollArgs { op, kind, n, iters }))
                    });
                }
            }
        }
    }
    log(&format!(
        "{} x{p}: plain data (_into, allreduce, map_reduce)",
        par.mode()
    ));
    crate::data::measure(par, plan, figs);
    log(&format!("{} x{p}: maps", par.mode()));
    record(figs, plan::k_fine(p), || {
        main_result(par.run(
            tasks::map_fine,
            MapArgs {
                n: plan.fine_n,
                r: 0,
                iters: plan.fine,
            },
        ))
    });
    let (n, r) = plan.coarse;
    record(figs, plan::k_coarse(p), || {
        main_result(par.run(
            tasks::map_coarse,
            MapArgs {
                n,
                r,
                iters: plan.coarse_iters,
            },
        ))
    });
    if p > 1 {
        log(&format!("{} x{p}: pool-style maps", par.mode()));
        measure_pool_maps(par, plan, figs);
    }
}

/// The pool-style maps (`par.map(f, data)` on main outside a region) of
/// `p > 1` ranks: the imbalanced maps under the default schedule (chunks
/// handed to whichever rank is free) and under the static split, the fine
/// and the coarse map.
pub fn measure_pool_maps(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    let p = par.nprocs();
    for kind in Imbalance::ALL {
        for (sched, schedule) in [("dynamic", Schedule::Auto), ("static", Schedule::Static)] {
            record(figs, plan::k_imbalanced(kind.key(), sched, p), || {
                let m = par.mapper().schedule(schedule);
                timed_map(
                    plan.imbalanced,
                    || kind.items(),
                    |items| {
                        let n = items.len();
                        m.map(tasks::waits, Some(items)).map(|out| (out, n))
                    },
                )
            });
        }
    }
    measure_pool_fine_coarse(par, plan, figs);
}

/// The pool-style fine and coarse maps of `p > 1` ranks (also measured in
/// the suite's alternated rounds).
pub fn measure_pool_fine_coarse(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    let p = par.nprocs();
    record(figs, plan::k_pool("fine", p), || {
        timed_map(
            plan.fine,
            || f64_data(plan.fine_n),
            |data| {
                let n = data.len();
                par.map(tasks::fine, Some(data)).map(|out| (out, n))
            },
        )
    });
    let (n, r) = plan.coarse;
    record(figs, plan::k_pool("coarse", p), || {
        timed_map(
            plan.coarse_iters,
            || combinations(n as u8, r as u8),
            |combos| {
                let out = par.map_chunks(tasks::coarse, Some(combos));
                out.map(|out| (out, tasks::coarse_len(n, r)))
            },
        )
    });
}

/// Median seconds of a map over `iters`, checking that every call returned
/// as many results as it should.
fn timed_map<S, R>(
    iters: Iters,
    setup: impl FnMut() -> S,
    mut f: impl FnMut(S) -> parallelizer::Result<(Option<Vec<R>>, usize)>,
) -> Result<f64, String> {
    let mut err = None;
    let t = time_with(iters, setup, |input| match f(input) {
        Ok((Some(out), n)) if out.len() == n => Some(out),
        Ok((out, n)) => {
            let got = out.map(|o| o.len());
            err.get_or_insert(format!("{got:?} results, expected {n}"));
            None
        }
        Err(e) => {
            err.get_or_insert(e.to_string());
            None
        }
    });
    err.map_or(Ok(t), Err)
}

/// The cost of the MPI backend's `verify` option: on `par` (built with
/// it), the dispatch of an empty region and each collective of `Vec<f64>`
/// (serde and plain data) at the smallest size, where the extra exchange
/// of each call weighs most; the same keys as [`measure_backend`].
pub fn measure_verify_cost(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    let p = par.nprocs();
    let Ok(_entered) = par.enter() else { return };
    measure_dispatch(par, plan, figs);
    if p == 1 {
        return;
    }
    let n = plan.f64_ns[0];
    for op in Op::ALL {
        for kind in [Kind::F64, Kind::F64Pod] {
            let iters = plan.iters_for(coll_bytes(kind, n));
            record(figs, plan::k_coll(op.key(), kind.key(), n, p), || {
                main_result(par.run(tasks::collective, CollArgs { op, kind, n, iters }))
            });
        }
    }
}

/// The MPI backend at the thread level `PARALLELIZER_MPI_THREAD_LEVEL`
/// asks for (the suite sets it on this job's ranks): the calls where MPI's
/// own locking at `MPI_THREAD_MULTIPLE` weighs most, under the same keys
/// as [`measure_backend`]: the dispatch of an empty region, the ping-pongs
/// (2 ranks; the suite shows those up to 1 KiB by level and takes every
/// size's median at the default level), an allreduce of one f64.
pub fn measure_thread_level_cost(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    let p = par.nprocs();
    let Ok(_entered) = par.enter() else { return };
    measure_dispatch(par, plan, figs);
    if p == 2 {
        measure_pingpong(par, plan, figs, &|_| {});
    }
    if p > 1 {
        let iters = plan.iters_for(8);
        record(figs, data::k_allreduce(1, p), || {
            main_result(par.run(data::allreduce_task, data::ReduceArgs { n: 1, iters }))
        });
    }
    #[cfg(feature = "mpi")]
    if par.mode() == "mpi" {
        raw_in_job(par, plan, figs);
    }
}

/// Raw rsmpi's same small calls right after ours, in the same job and at
/// the same thread level (`in_job.rs`).
#[cfg(feature = "mpi")]
fn raw_in_job(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    use crate::in_job;
    let p = par.nprocs();
    record(figs, plan::k_in_job(&plan::k_dispatch(p)), || {
        main_result(par.run(in_job::raw_barrier, plan.dispatch))
    });
    if p == 2 {
        for &bytes in plan.pp_bytes.iter().filter(|&&b| b <= 1 << 10) {
            let iters = plan.iters_for(bytes);
            record(figs, plan::k_in_job(&plan::k_pp(bytes)), || {
                main_result(par.run(in_job::raw_pingpong, PingArgs { bytes, iters }))
            });
        }
    }
    if p > 1 {
        let iters = plan.iters_for(8);
        record(figs, plan::k_in_job(&data::k_allreduce(1, p)), || {
            main_result(par.run(in_job::raw_allreduce, data::ReduceArgs { n: 1, iters }))
        });
    }
}

/// The dispatch of an empty region on `par` (entered).
fn measure_dispatch(par: &Arc<dyn Parallelizer>, plan: &Plan, figs: &mut Figures) {
    record(figs, plan::k_dispatch(par.nprocs()), || {
        let mut err = None;
        let t = time(plan.dispatch, || {
            if let Err(e) = par.run(tasks::empty, ()) {
                err.get_or_insert(e.to_string());
            }
        });
        err.map_or(Ok(t), Err)
    });
}

/// The collective sizes for `kind`.
pub fn coll_sizes(plan: &Plan, kind: Kind) -> Vec<usize> {
    match kind {
        Kind::Str => vec![plan.str_n],
        Kind::F64 | Kind::F64Pod => plan.f64_ns.clone(),
    }
}

/// Approximate bytes of a collective payload (for choosing iterations).
pub fn coll_bytes(kind: Kind, n: usize) -> usize {
    match kind {
        Kind::Str => n * 16,
        Kind::F64 | Kind::F64Pod => n * 8,
    }
}

/// Start-up of a backend: `enter()` + drop (the outermost pair, which
/// starts and stops the ranks), median seconds.
pub fn measure_startup(par: &Arc<dyn Parallelizer>, iters: Iters) -> Result<f64, String> {
    let mut err = None;
    let t = time(iters, || match par.enter() {
        Ok(g) => {
            if let Err(e) = g.exit() {
                err.get_or_insert(e.to_string());
            }
        }
        Err(e) => {
            err.get_or_insert(e.to_string());
        }
    });
    err.map_or(Ok(t), Err)
}

/// rayon on a pool of `p` threads: dispatch (`broadcast`), the two maps
/// (`par_iter`), and pool build + drop.
pub fn rayon_baselines(plan: &Plan, p: usize, figs: &mut Figures) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(p)
        .build()
        .expect("rayon pool");
    record(figs, plan::k_dispatch(p), || {
        Ok(time(plan.dispatch, || pool.broadcast(|_| ())))
    });
    rayon_map_baselines(&pool, plan, figs);
    record(figs, plan::k_startup(p), || {
        Ok(time(plan.startup, || {
            rayon::ThreadPoolBuilder::new()
                .num_threads(p)
                .build()
                .expect("rayon pool")
        }))
    });
}

/// Rayon's fine and coarse maps on `pool` (also measured in the suite's
/// alternated rounds).
pub fn rayon_map_baselines(pool: &rayon::ThreadPool, plan: &Plan, figs: &mut Figures) {
    let p = pool.current_num_threads();
    record(figs, plan::k_fine(p), || {
        Ok(time_with(
            plan.fine,
            || f64_data(plan.fine_n),
            |data| pool.install(|| data.into_par_iter().map(fine_work).collect::<Vec<f64>>()),
        ))
    });
    let (n, r) = plan.coarse;
    record(figs, plan::k_coarse(p), || {
        Ok(time_with(
            plan.coarse_iters,
            || combinations(n as u8, r as u8),
            |combos| {
                // One result vector per tuple, then one concatenation (memcpy):
                // faster than collecting a `flat_map_iter`, which pushes item by item.
                let out: Vec<u32> = pool.install(|| {
                    combos
                        .into_par_iter()
                        .map(|c| mapped_func(vec![c]))
                        .collect::<Vec<Vec<u32>>>()
                        .concat()
                });
                assert_eq!(out.len(), tasks::coarse_len(n, r));
                out
            },
        ))
    });
}

/// The serial loop: the maps on the calling thread (for the imbalanced
/// maps, the total work: the ideal on P ranks is this over P).
pub fn serial_baselines(plan: &Plan, figs: &mut Figures) {
    for kind in Imbalance::ALL {
        record(figs, plan::k_imbalanced(kind.key(), "serial", 1), || {
            Ok(time_with(
                plan.imbalanced,
                || kind.items(),
                |items| items.into_iter().map(wait_item).collect::<Vec<u64>>(),
            ))
        });
    }
    record(figs, plan::k_fine(1), || {
        Ok(time_with(
            plan.fine,
            || f64_data(plan.fine_n),
            |data| data.into_iter().map(fine_work).collect::<Vec<f64>>(),
        ))
    });
    let (n, r) = plan.coarse;
    record(figs, plan::k_coarse(1), || {
        Ok(time_with(
            plan.coarse_iters,
            || combinations(n as u8, r as u8),
            mapped_func,
        ))
    });
}

/// What a copy costs: ping-pong = one copy of the message into a
/// preallocated buffer; broadcast = `p - 1` clones of the vector; scatter =
/// copies of chunks 1..p; gather = concatenating `p` chunks; scatter+gather
/// = both.
pub fn memcpy_baselines(plan: &Plan, figs: &mut Figures) {
    for &bytes in &plan.pp_bytes {
        let src = vec![1u8; bytes];
        let mut dst = vec![0u8; bytes];
        // Small copies are far below the timer's resolution: batch them.
        let batch = if bytes < 64 << 10 { 1000 } else { 1 };
        record(figs, plan::k_pp(bytes), || {
            Ok(time_batched(plan.iters_for(bytes), batch, || {
                dst.copy_from_slice(std::hint::black_box(&src));
                dst[0]
            }))
        });
    }
    for &p in &plan.ranks {
        for kind in Kind::ALL {
            for n in coll_sizes(plan, kind) {
                let iters = plan.iters_for(coll_bytes(kind, n));
                match kind {
                    Kind::Str => memcpy_colls(figs, kind, p, iters, string_data(n)),
                    _ => memcpy_colls(figs, kind, p, iters, f64_data(n)),
                }
            }
        }
    }
}

fn memcpy_colls<T: Clone + Send>(
    figs: &mut Figures,
    kind: Kind,
    p: usize,
    iters: Iters,
    full: Vec<T>,
) {
    let n = full.len();
    let sizes = parallelizer::chunk_sizes(n, p);
    let bounds: Vec<(usize, usize)> = sizes
        .iter()
        .scan(0, |lo, &k| {
            let r = (*lo, *lo + k);
            *lo += k;
            Some(r)
        })
        .collect();
    let scatter = |full: &[T]| -> Vec<Vec<T>> {
        bounds[1..]
            .iter()
            .map(|&(lo, hi)| full[lo..hi].to_vec())
            .collect()
    };
    let gather = |chunks: &[Vec<T>]| -> Vec<T> {
        let mut out = Vec::with_capacity(n);
        for c in chunks {
            out.extend_from_slice(c);
        }
        out
    };
    let chunks: Vec<Vec<T>> = bounds
        .iter()
        .map(|&(lo, hi)| full[lo..hi].to_vec())
        .collect();
    record(figs, plan::k_coll("bcast", kind.key(), n, p), || {
        Ok(time(iters, || {
            (1..p).map(|_| full.clone()).collect::<Vec<_>>()
        }))
    });
    record(figs, plan::k_coll("scatter", kind.key(), n, p), || {
        Ok(time(iters, || scatter(&full)))
    });
    record(figs, plan::k_coll("gather", kind.key(), n, p), || {
        Ok(time(iters, || gather(&chunks)))
    });
    record(figs, plan::k_coll("sg", kind.key(), n, p), || {
        Ok(time(iters, || {
            let mut parts = scatter(&full);
            parts.insert(0, chunks[0].clone());
            gather(&parts)
        }))
    });
}

/// The raw Unix-socket baselines for `p` ranks: dispatch round trip,
/// ping-pong (p = 2), `Vec<f64>` collectives as raw bytes, and spawning
/// `p - 1` children that exit at once.
pub fn rawsock_baselines(plan: &Plan, p: usize, figs: &mut Figures) {
    record(figs, plan::k_startup(p), || {
        rawsock::spawn_exit(p - 1, plan.startup).map_err(|e| e.to_string())
    });
    let mut world = match SockWorld::spawn(p - 1) {
        Ok(w) => w,
        Err(e) => {
            figs.insert(plan::k_dispatch(p), format!("failed: {e}").into());
            return;
        }
    };
    let io = |r: std::io::Result<f64>| r.map_err(|e| e.to_string());
    record(figs, plan::k_dispatch(p), || {
        io(world.dispatch(plan.dispatch))
    });
    if p == 2 {
        for &bytes in &plan.pp_bytes {
            record(figs, plan::k_pp(bytes), || {
                io(world.pingpong(bytes, plan.iters_for(bytes)))
            });
        }
    }
    for &n in &plan.f64_ns {
        let data: Vec<u8> = f64_data(n).iter().flat_map(|x| x.to_le_bytes()).collect();
        let iters = plan.iters_for(n * 8);
        record(figs, plan::k_coll("bcast", "f64", n, p), || {
            io(world.bcast(&data, iters))
        });
        record(figs, plan::k_coll("scatter", "f64", n, p), || {
            io(world.scatter(&data, 8, iters))
        });
        record(figs, plan::k_coll("gather", "f64", n, p), || {
            io(world.gather(data.len(), 8, iters))
        });
        record(figs, plan::k_coll("sg", "f64", n, p), || {
            io(world.scatter_gather(&data, 8, iters))
        });
    }
}

/// The threads ping-pong baseline: a `Vec<u8>` moved back and forth over two
/// `std::sync::mpsc` channels between the caller and one thread; median
/// one-way seconds.
pub fn channel_baselines(plan: &Plan, figs: &mut Figures) {
    use std::sync::mpsc::channel;
    let (to_tx, to_rx) = channel::<Vec<u8>>();
    let (back_tx, back_rx) = channel::<Vec<u8>>();
    let echo = std::thread::spawn(move || {
        for v in to_rx {
            if back_tx.send(v).is_err() {
                break;
            }
        }
    });
    for &bytes in &plan.pp_bytes {
        record(figs, plan::k_pp(bytes), || {
            let t = time_with(
                plan.iters_for(bytes),
                || vec![1u8; bytes],
                |msg| {
                    to_tx.send(msg).expect("echo thread");
                    back_rx.recv().expect("echo thread")
                },
            );
            Ok(t / 2.0)
        });
    }
    drop(to_tx);
    let _ = echo.join();
}
