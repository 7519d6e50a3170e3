//! The MPI baselines: raw rsmpi, no parallelizer. Run by the suite as
//! `mpirun -n P mpi_raw --plan PLAN --out FIGURES`; rank 0 writes the figures.
//! With `--small`, only the calls whose figures swing most from one job to
//! the next (the barrier, the ping-pongs, the allreduce of one f64), which
//! the suite measures in several jobs and takes the median of, at
//! `MPI_THREAD_SINGLE` and (`PARALLELIZER_MPI_THREAD_LEVEL=multiple`) at
//! `MPI_THREAD_MULTIPLE`. With `--coll`, only the collectives of `f64` on
//! reused buffers, which the suite measures in alternated rounds with ours
//! and mpi4py's.

use mpi::Count;
use mpi::collective::SystemOperation;
use mpi::datatype::{Partition, PartitionMut};
use mpi::traits::*;
use parallelizer::plain_buffer;
use parallelizer_bench::data::FRESH;
use parallelizer_bench::measure::{time, time_with};
use parallelizer_bench::plan::{self, Figures, Plan};
use parallelizer_bench::workloads::{f64_data, plain_copy, starts};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut plan = Plan::load(plan::arg_value(&args, "--plan").expect("--plan").as_ref())
        .expect("read the plan");
    let small = args.iter().any(|a| a == "--small");
    let coll = args.iter().any(|a| a == "--coll");
    if small {
        plan.f64_ns.clear();
    }
    let out = plan::arg_value(&args, "--out").expect("--out");

    // `MPI_Init` (what rsmpi's `initialize` calls: `MPI_THREAD_SINGLE` on
    // Open MPI), or `MPI_THREAD_MULTIPLE` when the suite asks for the level
    // the parallelizer's backend runs at by default, with the variable the
    // backend reads.
    let multiple = std::env::var("PARALLELIZER_MPI_THREAD_LEVEL").as_deref() == Ok("multiple");
    let universe = if multiple {
        let (universe, level) =
            mpi::initialize_with_threading(mpi::Threading::Multiple).expect("MPI initializes once");
        assert_eq!(
            level,
            mpi::Threading::Multiple,
            "MPI_THREAD_MULTIPLE provided"
        );
        universe
    } else {
        mpi::initialize().expect("MPI initializes once")
    };
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let root = world.process_at_rank(0);
    let mut figs = Figures::new();
    let mut put = |k: String, v: f64| {
        figs.insert(k, v.into());
    };

    // Dispatch baseline: a barrier (made with `--coll` too, untimed, so
    // that its collectives follow the same start as in a whole job).
    let barrier = time(plan.dispatch, || world.barrier());
    if !coll {
        put(plan::k_dispatch(size), barrier);
    }

    // Ping-pong 0 <-> 1 (only with exactly 2 ranks, like the other rows).
    if size == 2 && !coll {
        for &bytes in &plan.pp_bytes {
            let iters = plan.iters_for(bytes);
            let mut buf = vec![1u8; bytes];
            let round_trip = time_with(
                iters,
                || world.barrier(),
                |()| {
                    if rank == 0 {
                        world.process_at_rank(1).send(&buf[..]);
                        world.process_at_rank(1).receive_into(&mut buf[..]);
                    } else {
                        world.process_at_rank(0).receive_into(&mut buf[..]);
                        world.process_at_rank(0).send(&buf[..]);
                    }
                },
            );
            put(plan::k_pp(bytes), round_trip / 2.0);
        }
    }

    // Collectives of Vec<f64>: native datatypes, varcount scatter/gather.
    for &n in &plan.f64_ns {
        let iters = plan.iters_for(n * 8);
        // The buffers ours use (`plain_buffer`: huge pages from 2 MiB;
        // numpy's from 4 MiB): a root buffer on 4 KiB pages makes an 80 MB MPI_Bcast
        // 16 ms instead of 11.5 ms here, which is not the library's doing.
        let full = plain_copy(&f64_data(n));
        let counts: Vec<Count> = parallelizer::chunk_sizes(n, size)
            .into_iter()
            .map(|c| c as Count)
            .collect();
        let displs = starts(&counts);
        let lo = displs[rank] as usize;
        let mine_len = counts[rank] as usize;
        let timed = |f: &mut dyn FnMut()| time_with(iters, || world.barrier(), |()| f());
        let mut buf = if rank == 0 {
            plain_copy(&full)
        } else {
            plain_buffer(n)
        };
        let t = timed(&mut || root.broadcast_into(&mut buf[..]));
        put(plan::k_coll("bcast", "f64", n, size), t);

        let mut mine: Vec<f64> = plain_buffer(mine_len);
        let t = timed(&mut || {
            if rank == 0 {
                let part = Partition::new(&full[..], &counts[..], &displs[..]);
                root.scatter_varcount_into_root(&part, &mut mine[..]);
            } else {
                root.scatter_varcount_into(&mut mine[..]);
            }
        });
        put(plan::k_coll("scatter", "f64", n, size), t);

        let chunk = plain_copy(&full[lo..lo + mine_len]);
        let mut all: Vec<f64> = plain_buffer(if rank == 0 { n } else { 0 });
        let t = timed(&mut || {
            if rank == 0 {
                let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
                root.gather_varcount_into_root(&chunk[..], &mut part);
            } else {
                root.gather_varcount_into(&chunk[..]);
            }
        });
        put(plan::k_coll("gather", "f64", n, size), t);

        let t = timed(&mut || {
            if rank == 0 {
                let part = Partition::new(&full[..], &counts[..], &displs[..]);
                root.scatter_varcount_into_root(&part, &mut mine[..]);
                let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
                root.gather_varcount_into_root(&mine[..], &mut part);
            } else {
                root.scatter_varcount_into(&mut mine[..]);
                root.gather_varcount_into(&mine[..]);
            }
        });
        put(plan::k_coll("sg", "f64", n, size), t);

        // The same calls on the memory the generic calls of the suite get
        // (`tasks.rs`): main's vector a fresh clone (4 KiB pages, touched),
        // each result a fresh `plain_buffer`, dropped after the clock stops.
        // What a raw MPI program pays for results it must allocate.
        let fresh = |op: &str| {
            let inputs = || {
                let data = (rank == 0).then(|| full.to_vec());
                let chunk = full[lo..lo + mine_len].to_vec();
                world.barrier();
                (data, chunk)
            };
            time_with(iters, inputs, |(mut data, chunk)| {
                let mut kept: Vec<Vec<f64>> = Vec::new();
                if op == "bcast" {
                    match data.as_mut() {
                        Some(data) => root.broadcast_into(&mut data[..]),
                        None => {
                            let mut got: Vec<f64> = plain_buffer(n);
                            root.broadcast_into(&mut got[..]);
                            kept.push(got);
                        }
                    }
                }
                let mut mine = chunk;
                if op == "scatter" || op == "sg" {
                    mine = plain_buffer(mine_len);
                    match data.as_ref() {
                        Some(data) => {
                            let part = Partition::new(&data[..], &counts[..], &displs[..]);
                            root.scatter_varcount_into_root(&part, &mut mine[..]);
                        }
                        None => root.scatter_varcount_into(&mut mine[..]),
                    }
                }
                if op == "gather" || op == "sg" {
                    if rank == 0 {
                        let mut all: Vec<f64> = plain_buffer(n);
                        let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
                        root.gather_varcount_into_root(&mine[..], &mut part);
                        kept.push(all);
                    } else {
                        root.gather_varcount_into(&mine[..]);
                    }
                }
                (kept, mine, data)
            })
        };
        if !coll {
            for op in ["bcast", "scatter", "gather", "sg"] {
                put(plan::k_coll(op, FRESH, n, size), fresh(op));
            }
        }
    }

    // MPI_Allreduce (sum) of 1 and 1e6 f64 per rank, preallocated buffers.
    for n in parallelizer_bench::data::ALLREDUCE_NS {
        if (small && n > 1) || coll {
            continue;
        }
        let iters = plan.iters_for(n * 8);
        let send = f64_data(n);
        let mut recv = vec![0.0f64; n];
        let t = time_with(
            iters,
            || world.barrier(),
            |()| {
                world.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
            },
        );
        put(parallelizer_bench::data::k_allreduce(n, size), t);
    }

    if rank == 0 {
        plan::save_figures(out.as_ref(), &figs).expect("write the figures");
    }
}
