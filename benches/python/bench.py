"""Python anchors for the parallelizer benchmark suite.

Run by the suite (`bash benches/run.sh`), in the venv that run.sh creates:

    python bench.py --mode pool --plan PLAN.json --out OUT.json
    mpirun -n P python bench.py --mode mpi --plan PLAN.json --out OUT.json
    mpirun -n P python bench.py --mode mpi-buffer --plan PLAN.json --out OUT.json

The plan is the suite's (sizes, ranks, iterations). Output: a JSON object
{source: {key: seconds}} with the suite's keys (dispatch:P, pp:BYTES,
bcast:f64:N:P, map_fine:P, ...). Timing is the suite's: warm-up, fixed
iterations, median, timed on rank 0 after an untimed barrier.
"""

import argparse
import itertools
import json
import multiprocessing as mp
import statistics
import time


def median_time(iters, fn, setup=None):
    samples = []
    for i in range(iters["warmup"] + iters["timed"]):
        arg = setup() if setup else None
        t0 = time.perf_counter()
        fn(arg) if setup else fn()
        dt = time.perf_counter() - t0
        if i >= iters["warmup"]:
            samples.append(dt)
    return statistics.median(samples)


def chunk_sizes(n, p):
    base, extra = divmod(n, p)
    return [base + (1 if i < extra else 0) for i in range(p)]


def bounds(n, p):
    out, lo = [], 0
    for k in chunk_sizes(n, p):
        out.append((lo, lo + k))
        lo += k
    return out


# ---- workloads: the same as benches/src/workloads.rs ----

def fine_work(x):
    """16 dependent multiply-adds (the suite's ~10 ns item; far more in Python)."""
    y = x
    for _ in range(16):
        y = y * 1.0000001 + 0.5
    return y


def mapped_func(data):
    """McUtils' mapped_func: every permutation of every tuple, sum(1 + d)."""
    return [sum(1 + d for d in p) for c in data for p in itertools.permutations(c)]


def noop(_):
    return None


def capped(iters, warmup=1, timed=3):
    return {"warmup": min(iters["warmup"], warmup), "timed": min(iters["timed"], timed)}


# ---- multiprocessing.Pool ----

def pool_mode(plan):
    pool_figs, serial_figs = {}, {}
    n, r = plan["coarse"]
    fine_iters = capped(plan["fine"])
    # One un-warmed iteration of the big coarse map: it takes tens of seconds.
    coarse_iters = {"warmup": 0, "timed": 1} if n * r > 70 else capped(plan["coarse_iters"])

    serial_figs["map_fine:1"] = median_time(
        fine_iters, lambda data: [fine_work(x) for x in data],
        setup=lambda: [float(i) for i in range(plan["fine_n"])])
    if n <= 10:
        serial_figs["map_coarse:1"] = median_time(
            coarse_iters, mapped_func, setup=lambda: list(itertools.combinations(range(n), r)))
    else:
        serial_figs["map_coarse:1"] = "skipped (too slow for the suite; see McUtils serial)"

    for p in plan["ranks"]:
        pool_figs[f"startup:{p}"] = median_time(plan["startup"], lambda: start_stop(p))
        with mp.Pool(p) as pool:
            pool.map(noop, range(p))  # workers up before timing
            pool_figs[f"dispatch:{p}"] = median_time(
                plan["dispatch"], lambda: pool.map(noop, range(p), chunksize=1))
            pool_figs[f"map_fine:{p}"] = median_time(
                fine_iters, lambda data: pool.map(fine_work, data),
                setup=lambda: [float(i) for i in range(plan["fine_n"])])

            def coarse(combos):
                chunks = [combos[lo:hi] for lo, hi in bounds(len(combos), p)]
                return [x for part in pool.map(mapped_func, chunks, chunksize=1) for x in part]

            pool_figs[f"map_coarse:{p}"] = median_time(
                coarse_iters, coarse, setup=lambda: list(itertools.combinations(range(n), r)))
    return {"py:pool": pool_figs, "py:serial": serial_figs}


def start_stop(p):
    pool = mp.Pool(p)
    pool.close()
    pool.join()


# ---- mpi4py ----

def mpi_mode(plan, buffer_only=False):
    """The mpi4py rows; with `buffer_only`, only the buffer collectives of
    f64 (the suite measures those in alternated rounds with ours)."""
    from mpi4py import MPI
    import numpy as np

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    pickle, buffer = {}, {}

    def timed(iters, fn):
        samples = []
        for i in range(iters["warmup"] + iters["timed"]):
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if i >= iters["warmup"]:
                samples.append(dt)
        return statistics.median(samples)

    def iters_for(nbytes):
        return plan["small"] if nbytes <= 1 << 20 else plan["large"]

    # The barriers run with `buffer_only` too, untimed, so that the
    # collectives follow the same start as in a whole job.
    samples = []
    for i in range(plan["dispatch"]["warmup"] + plan["dispatch"]["timed"]):
        t0 = time.perf_counter()
        comm.barrier()
        if i >= plan["dispatch"]["warmup"]:
            samples.append(time.perf_counter() - t0)
    if not buffer_only:
        pickle[f"dispatch:{size}"] = statistics.median(samples)

    if size == 2 and not buffer_only:
        for nbytes in plan["pp_bytes"]:
            it = iters_for(nbytes)
            obj = bytes(nbytes)
            arr = np.ones(nbytes, dtype=np.uint8)

            def pp_pickle():
                if rank == 0:
                    comm.send(obj, dest=1)
                    comm.recv(source=1)
                else:
                    comm.send(comm.recv(source=0), dest=0)

            def pp_buffer():
                if rank == 0:
                    comm.Send(arr, dest=1)
                    comm.Recv(arr, source=1)
                else:
                    comm.Recv(arr, source=0)
                    comm.Send(arr, dest=0)

            pickle[f"pp:{nbytes}"] = timed(it, pp_pickle) / 2
            buffer[f"pp:{nbytes}"] = timed(it, pp_buffer) / 2

    for n in plan["f64_ns"]:
        it = iters_for(n * 8)
        full = np.arange(n, dtype=np.float64)
        counts = chunk_sizes(n, size)
        displs = [lo for lo, _ in bounds(n, size)]
        lo, hi = bounds(n, size)[rank]
        mine = full[lo:hi].copy()
        buf = full.copy() if rank == 0 else np.empty(n)
        recv = np.empty(counts[rank])
        allbuf = np.empty(n) if rank == 0 else None
        chunks = [full[a:b] for a, b in bounds(n, size)] if rank == 0 else None

        def g_pickle(x):
            out = comm.gather(x, root=0)
            return np.concatenate(out) if rank == 0 else None

        def g_buffer(x):
            comm.Gatherv(x, [allbuf, counts, displs, MPI.DOUBLE] if rank == 0 else None, root=0)

        def s_buffer():
            comm.Scatterv([full, counts, displs, MPI.DOUBLE] if rank == 0 else None, recv, root=0)
            return recv

        # Each op through the pickle API, then through the buffer API.
        for op, by_pickle, by_buffer in [
            ("bcast", lambda: comm.bcast(full if rank == 0 else None, root=0),
             lambda: comm.Bcast(buf, root=0)),
            ("scatter", lambda: comm.scatter(chunks, root=0), s_buffer),
            ("gather", lambda: g_pickle(mine), lambda: g_buffer(mine)),
            ("sg", lambda: g_pickle(comm.scatter(chunks, root=0)),
             lambda: g_buffer(s_buffer())),
        ]:
            key = f"{op}:f64:{n}:{size}"
            if not buffer_only:
                pickle[key] = timed(it, by_pickle)
            buffer[key] = timed(it, by_buffer)

    if buffer_only:
        return rank, {"py:mpi4py_buffer": buffer}

    for n in (1, 1_000_000):
        it = iters_for(n * 8)
        send = np.arange(n, dtype=np.float64)
        recv = np.empty(n)
        buffer[f"allreduce:{n}:{size}"] = timed(it, lambda: comm.Allreduce(send, recv, op=MPI.SUM))

    n = plan["str_n"]
    it = iters_for(n * 16)
    strings = [f"item-{i}" for i in range(n)]
    schunks = [strings[a:b] for a, b in bounds(n, size)] if rank == 0 else None
    lo, hi = bounds(n, size)[rank]
    smine = strings[lo:hi]

    def sg_str(x):
        out = comm.gather(x, root=0)
        return [s for part in out for s in part] if rank == 0 else None

    key = lambda op: f"{op}:str:{n}:{size}"
    pickle[key("bcast")] = timed(it, lambda: comm.bcast(strings if rank == 0 else None, root=0))
    pickle[key("scatter")] = timed(it, lambda: comm.scatter(schunks, root=0))
    pickle[key("gather")] = timed(it, lambda: sg_str(smine))
    pickle[key("sg")] = timed(it, lambda: sg_str(comm.scatter(schunks, root=0)))

    return rank, {"py:mpi4py_pickle": pickle, "py:mpi4py_buffer": buffer}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["pool", "mpi", "mpi-buffer"], required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)
    if args.mode == "pool":
        rank, figs = 0, pool_mode(plan)
    else:
        rank, figs = mpi_mode(plan, buffer_only=args.mode == "mpi-buffer")
    if rank == 0:
        with open(args.out, "w") as f:
            json.dump(figs, f, indent=1)


if __name__ == "__main__":
    main()
