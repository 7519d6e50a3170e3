//! BENCHMARKS.md and the bandwidth plot, from the figures of one run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::plan::{self, Figures, LEVEL_REPS, MAP_REPS, Plan};
use crate::tasks::{Kind, Op};

/// Everything one run measured: figures by source (`threads`, `rayon`,
/// `py:pool`, ...), why a whole source is missing, and the machine.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Store {
    /// Figures by source.
    pub sources: BTreeMap<String, Figures>,
    /// Why a source has no figures (`n/a (backend not built)`).
    pub missing: BTreeMap<String, String>,
    /// Machine description, in display order.
    pub machine: Vec<(String, String)>,
    /// The plan of the run.
    pub plan: Option<Plan>,
    /// How long the run took, in seconds.
    pub wall: f64,
    /// The Python original's figures (`benches/reference/mcutils-bench.json`), if found.
    pub mcutils: Option<serde_json::Value>,
}

/// A figure, or why there is none.
type Cell = Result<f64, String>;

impl Store {
    /// The figure `key` of `source`.
    pub fn get(&self, source: &str, key: &str) -> Cell {
        match self.sources.get(source) {
            // The reason is listed once under "Not measured in this run".
            None => Err("n/a".into()),
            Some(f) => match f.get(key) {
                Some(serde_json::Value::Number(n)) => n.as_f64().ok_or_else(|| "n/a".into()),
                Some(serde_json::Value::String(s)) => Err(s.clone()),
                _ => Err("n/a".into()),
            },
        }
    }

    /// A McUtils median (seconds) by backend and metric.
    fn mcutils(&self, backend: &str, metric: &str) -> Option<f64> {
        self.mcutils
            .as_ref()?
            .get("medians_s")?
            .get(backend)?
            .get(metric)?
            .as_f64()
    }
}

/// `1.23 µs`, three significant digits.
pub fn fmt_time(s: f64) -> String {
    let (v, unit) = if s < 1e-6 {
        (s * 1e9, "ns")
    } else if s < 1e-3 {
        (s * 1e6, "µs")
    } else if s < 1.0 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

fn fmt_cell(c: &Cell) -> String {
    match c {
        Ok(v) => fmt_time(*v),
        Err(e) => short(e),
    }
}

/// Errors can be long; tables get the first line, cut.
fn short(e: &str) -> String {
    let line = e.lines().next().unwrap_or("").replace('|', "/");
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(60).collect::<String>())
    } else {
        line
    }
}

fn fmt_ratio(ours: &Cell, base: &Cell) -> String {
    match (ours, base) {
        (Ok(o), Ok(b)) if *b > 0.0 => {
            let r = o / b;
            if r > 1.5 {
                format!("**{r:.2}×**")
            } else {
                format!("{r:.2}×")
            }
        }
        _ => "–".into(),
    }
}

fn fmt_bw(bytes: usize, c: &Cell) -> String {
    match c {
        Ok(t) if *t > 0.0 => format!("{:.0} MB/s", bytes as f64 / t / 1e6),
        _ => "–".into(),
    }
}

fn labelled(label: &str, c: &Cell) -> String {
    match c {
        Ok(v) => format!("{} ({label})", fmt_time(*v)),
        Err(e) => format!("{} ({label})", short(e)),
    }
}

fn size_name(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn n_name(n: usize) -> String {
    let e = (n as f64).log10();
    if n >= 1000 && (e - e.round()).abs() < 1e-9 {
        format!("1e{}", e.round() as i32)
    } else {
        n.to_string()
    }
}

/// The backends measured and, per backend, the source of its baseline.
const BACKENDS: [(&str, &str, &str); 3] = [
    ("threads", "memcpy", "memcpy"),
    ("processes", "rawsock", "raw socket"),
    ("mpi", "rawmpi", "raw rsmpi"),
];

fn mcutils_backend(backend: &str) -> Option<&'static str> {
    match backend {
        "processes" => Some("mp2"),
        "mpi" => Some("mpi"),
        "serial" => Some("serial"),
        _ => None,
    }
}

fn mc_cell(store: &Store, backend: &str, p: usize, metric: &str, scale: f64) -> String {
    if p != 2 && backend != "serial" {
        return "–".into();
    }
    match mcutils_backend(backend).and_then(|b| store.mcutils(b, metric)) {
        Some(v) => fmt_time(v * scale),
        None => "–".into(),
    }
}

/// Writes BENCHMARKS.md to `md` and the plot to `svg` (linked as `svg_link`).
pub fn write(store: &Store, md: &Path, svg: &Path, svg_link: &str) -> std::io::Result<()> {
    let plot_note = match plot(store, svg) {
        Ok(()) => format!("![bandwidth against message size]({svg_link})\n"),
        Err(e) => format!("(the plot could not be drawn: {e})\n"),
    };
    std::fs::write(md, markdown(store, &plot_note))
}

fn markdown(store: &Store, plot_note: &str) -> String {
    let plan = store.plan.clone().unwrap_or_else(|| Plan::new(false));
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Generated by `{}` ({} mode, {:.0} s). Every figure is the **median** of fixed \
         iterations after warm-up (OSU-style), and every baseline was measured **in the same run** \
         on the same machine. Ratio = ours / baseline time: below 1 we are faster, 1.00× is parity, \
         **bold** marks a loss by more than 1.5×. Absolute times depend on the machine; quote ratios.\n",
        if plan.quick {
            "bash benches/run.sh --quick"
        } else {
            "bash benches/run.sh"
        },
        if plan.quick {
            "quick: smaller sizes, few iterations, noisy"
        } else {
            "full"
        },
        store.wall
    );
    let _ = writeln!(w, "## Machine\n");
    for (k, v) in &store.machine {
        let _ = writeln!(w, "- {k}: {v}");
    }
    let _ = writeln!(w);
    if !store.missing.is_empty() {
        let _ = writeln!(w, "Not measured in this run:\n");
        for (src, why) in &store.missing {
            let _ = writeln!(w, "- `{src}`: {why}");
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(
        w,
        "\"Python (same run)\" columns come from `benches/python/bench.py` in this run. \
         \"McUtils (measured separately)\" quotes [`benches/reference/mcutils-bench.json`]\
         (benches/reference/README.md): the Python original on the same kind of 2-core machine, \
         **not** this run; it has figures for 2 ranks only.\n"
    );

    // Dispatch.
    let _ = writeln!(w, "## Dispatch: `run` of an empty task\n");
    let _ = writeln!(
        w,
        "Baselines: rayon `ThreadPool::broadcast` of an empty closure (threads), a raw Unix-socket \
         round trip to every worker process, 16 bytes out and 8 back (processes), a raw rsmpi \
         barrier (mpi). The mpi row and its baseline are medians of {LEVEL_REPS} jobs each (see \
         the thread-level section). Python: `Pool.map(noop, range(P))` on a `Pool(P)`, and \
         mpi4py `comm.barrier()`.\n"
    );
    let _ = writeln!(
        w,
        "| backend | ranks | ours | baseline | ratio | Python (same run) | McUtils run(noop) (measured separately) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    {
        let ours = store.get("serial", &plan::k_dispatch(1));
        let _ = writeln!(
            w,
            "| serial | 1 | {} | – | – | – | {} |",
            fmt_cell(&ours),
            mc_cell(store, "serial", 1, "run_noop", 1.0)
        );
    }
    for (backend, base, base_name) in [
        ("threads", "rayon", "rayon broadcast"),
        ("processes", "rawsock", "raw socket"),
        ("mpi", "rawmpi", "rsmpi barrier"),
    ] {
        for &p in &plan.ranks {
            let key = plan::k_dispatch(p);
            let ours = store.get(backend, &key);
            let b = store.get(base, &key);
            let py = match backend {
                "processes" => labelled("Pool.map", &store.get("py:pool", &key)),
                "mpi" => labelled("mpi4py barrier", &store.get("py:mpi4py_pickle", &key)),
                _ => "–".into(),
            };
            let _ = writeln!(
                w,
                "| {backend} | {p} | {} | {} | {} | {py} | {} |",
                fmt_cell(&ours),
                labelled(base_name, &b),
                fmt_ratio(&ours, &b),
                mc_cell(store, backend, p, "run_noop", 1.0)
            );
        }
    }
    let _ = writeln!(w);

    // The MPI backend's `verify` option.
    let _ = writeln!(w, "## MPI: the cost of option `verify`\n");
    let _ = writeln!(
        w,
        "Option `verify` (`Config::new(\"mpi\").option(\"verify\", true)`) makes mismatched \
         collectives and waits for a finished rank errors instead of hangs: each collective first \
         exchanges which call it is (an `MPI_Allgather` of three words), each region ends with one \
         more exchange and a note per rank, and plain data travels as messages. Same run, same \
         workloads as above, smallest `Vec<f64>` size (where the extra exchange weighs most). \
         Ratio = with / without.\n"
    );
    let _ = writeln!(w, "| workload | ranks | mpi | mpi with `verify` | ratio |");
    let _ = writeln!(w, "|---|---|---|---|---|");
    for &p in plan.ranks.iter().filter(|&&p| p > 1) {
        let n = plan.f64_ns[0];
        let mut rows = vec![("run (empty region)".to_string(), plan::k_dispatch(p))];
        for op in crate::tasks::Op::ALL {
            for kind in [crate::tasks::Kind::F64, crate::tasks::Kind::F64Pod] {
                rows.push((
                    format!("{} {} x{}", op.key(), kind.key(), n_name(n)),
                    plan::k_coll(op.key(), kind.key(), n, p),
                ));
            }
        }
        for (name, key) in rows {
            let plain = store.get("mpi", &key);
            let checked = store.get("mpi_verify", &key);
            let _ = writeln!(
                w,
                "| {name} | {p} | {} | {} | {} |",
                fmt_cell(&plain),
                fmt_cell(&checked),
                fmt_ratio(&checked, &plain)
            );
        }
    }
    let _ = writeln!(w);

    thread_level_section(store, &plan, w);

    // Point to point.
    let _ = writeln!(w, "## Point-to-point: ping-pong between ranks 0 and 1\n");
    let _ = writeln!(
        w,
        "One-way time = round trip / 2 (OSU latency); bandwidth = size / one-way time. Ours: \
         `send_pod`/`receive_pod` of a `Vec<u8>` (raw bytes, no codec, as the baselines; each \
         receive returns a new vector), and \"ours `_into`\": `send_slice`/`receive_into` on one \
         buffer allocated once (as mpi4py's `Send`/`Recv` into a numpy array). Baselines: a \
         hand-written ping-pong of the `Vec<u8>` over two `std::sync::mpsc` channels between two \
         threads (threads; the vector is moved, as ours is), raw socket ping-pong between two \
         processes (processes), raw rsmpi `send`/`receive_into` (mpi). \"ratio\" is ours over the \
         baseline, \"ratio `_into`\" ours `_into` over it: the like-for-like one where the \
         baseline receives into a buffer it already has (raw socket, raw rsmpi). The memcpy \
         column is one copy of the message into a preallocated buffer, the floor for any \
         transport that copies. The mpi rows and their baseline are medians of \
         {LEVEL_REPS} jobs each (see the thread-level section). Python: mpi4py \
         `send`/`recv` (pickle) and `Send`/`Recv` (buffer). McUtils figures are its round trips \
         halved.\n"
    );
    let _ = writeln!(
        w,
        "| size | backend | ours | ours bandwidth | ours `_into` (bandwidth) | baseline | baseline bandwidth | ratio | ratio `_into` | memcpy | Python (same run) | McUtils (measured separately) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &bytes in &plan.pp_bytes {
        let key = plan::k_pp(bytes);
        let mc_metric = match bytes {
            8 => Some("pp_int"),
            b if b == 1 << 20 => Some("pp_1MiB"),
            b if b == 16 << 20 => Some("pp_16MiB"),
            _ => None,
        };
        let memcpy = store.get("memcpy", &key);
        for (backend, base, base_name) in [
            ("threads", "channel", "channel ping-pong"),
            ("processes", "rawsock", "raw socket"),
            ("mpi", "rawmpi", "raw rsmpi"),
        ] {
            let ours = store.get(backend, &key);
            let into = store.get(backend, &plan::k_pp_into(bytes));
            let b = store.get(base, &key);
            let py = if backend == "threads" {
                "–".into()
            } else {
                format!(
                    "{} / {}",
                    labelled("pickle", &store.get("py:mpi4py_pickle", &key)),
                    labelled("buffer", &store.get("py:mpi4py_buffer", &key))
                )
            };
            let mc = mc_metric.map_or("–".into(), |m| mc_cell(store, backend, 2, m, 0.5));
            let _ = writeln!(
                w,
                "| {} | {backend} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {py} | {mc} |",
                size_name(bytes),
                fmt_cell(&ours),
                fmt_bw(bytes, &ours),
                fmt_cell(&into),
                fmt_bw(bytes, &into),
                labelled(base_name, &b),
                fmt_bw(bytes, &b),
                fmt_ratio(&ours, &b),
                // The channel baseline moves the vector: no like-for-like
                // `_into` ratio for threads.
                if backend == "threads" {
                    "–".to_string()
                } else {
                    fmt_ratio(&into, &b)
                },
                fmt_cell(&memcpy),
            );
        }
    }
    // (MPI binds each rank to one core: no probe there.)
    let rtt: Vec<String> = ["threads", "processes"]
        .iter()
        .map(|b| {
            let after = |bytes| fmt_cell(&store.get(b, &plan::k_line_rtt(bytes)));
            format!(
                "{b}: {} after 1 MiB, {} after 16 MiB",
                after(1 << 20),
                after(16 << 20)
            )
        })
        .collect();
    let _ = writeln!(
        w,
        "\nWhere the host put the two CPUs: the round trip of one cache line between two spinning \
         threads, probed right after each size's rows ({}). On this VM it is about 60–170 ns \
         when the host keeps the two vCPUs near each other and about 400–650 ns when it puts \
         them far apart, and it changes within seconds; the one-core memcpy column does not \
         depend on it, a transport between two ranks does (`benches/src/cores.rs`).",
        rtt.join("; ")
    );
    let _ = writeln!(w, "\n{plot_note}");

    // Collectives.
    for op in Op::ALL {
        let (title, what) = match op {
            Op::Bcast => ("broadcast", "main's vector to every rank"),
            Op::Scatter => (
                "scatter",
                "main's vector split into one contiguous chunk per rank",
            ),
            Op::Gather => (
                "gather",
                "every rank's chunk on main (ours: as the call returns it, `gather` one `Vec` \
                 per rank, `gather_pod` one vector; the baselines concatenate)",
            ),
            Op::ScatterGather => (
                "scatter + gather",
                "scatter, then gather of the chunk (McUtils' \"scatter+gather(chunk)\")",
            ),
        };
        let _ = writeln!(w, "## Collective: {title}\n");
        let _ = writeln!(
            w,
            "{what}. Timed on main after an untimed barrier. Payloads: `Vec<f64>` through the serde \
             call and through the `*_pod` call (raw bytes), `Vec<String>` through serde. Baselines: \
             copies with `clone`/`to_vec`/`extend` (threads; broadcast = P-1 clones), raw socket \
             writes/reads of the f64 bytes (processes), raw rsmpi `broadcast_into`, \
             `scatter_varcount`, `gather_varcount` on buffers from `plain_buffer` (mpi). No raw baseline moves strings, so \
             `Vec<String>` rows compare with the in-memory copy. Python: mpi4py pickle \
             (`bcast`/`scatter`/`gather` of a list, or of numpy chunks for f64) and buffer \
             (`Bcast`/`Scatterv`/`Gatherv`).\n"
        );
        let mc = op == Op::ScatterGather;
        let _ = writeln!(
            w,
            "| payload | n | backend | ranks | ours | baseline | ratio | Python (same run) |{}",
            if mc {
                " McUtils (measured separately) |"
            } else {
                ""
            }
        );
        let _ = writeln!(
            w,
            "|---|---|---|---|---|---|---|---|{}",
            if mc { "---|" } else { "" }
        );
        for kind in Kind::ALL {
            let sizes = match kind {
                Kind::Str => vec![plan.str_n],
                _ => plan.f64_ns.clone(),
            };
            for n in sizes {
                for (backend, base, base_name) in BACKENDS {
                    for &p in &plan.ranks {
                        let key = plan::k_coll(op.key(), kind.key(), n, p);
                        let ours = store.get(backend, &key);
                        let (bsrc, bname, bkind) = match (backend, kind) {
                            (_, Kind::Str) => ("memcpy", "clone", "str"),
                            ("threads", _) => (base, base_name, kind.key()),
                            _ => (base, base_name, "f64"),
                        };
                        let b = store.get(bsrc, &plan::k_coll(op.key(), bkind, n, p));
                        let py = if backend == "threads" {
                            "–".into()
                        } else {
                            let (src, label) = match kind {
                                Kind::F64Pod => ("py:mpi4py_buffer", "buffer"),
                                _ => ("py:mpi4py_pickle", "pickle"),
                            };
                            let pk = if kind == Kind::Str { "str" } else { "f64" };
                            labelled(label, &store.get(src, &plan::k_coll(op.key(), pk, n, p)))
                        };
                        let payload = match kind {
                            Kind::F64 => "`Vec<f64>` serde",
                            Kind::F64Pod => "`Vec<f64>` pod",
                            Kind::Str => "`Vec<String>`",
                        };
                        let mccell = if mc {
                            let metric = format!("sg_{n}");
                            let c = if kind == Kind::F64 {
                                mc_cell(store, backend, p, &metric, 1.0)
                            } else {
                                "–".into()
                            };
                            format!(" {c} |")
                        } else {
                            String::new()
                        };
                        let _ = writeln!(
                            w,
                            "| {payload} | {} | {backend} | {p} | {} | {} | {} | {py} |{mccell}",
                            n_name(n),
                            fmt_cell(&ours),
                            labelled(bname, &b),
                            fmt_ratio(&ours, &b),
                        );
                    }
                }
            }
        }
        let _ = writeln!(w);
    }

    crate::data::section(store, &plan, w);

    // Maps.
    let (cn, cr) = plan.coarse;
    let _ = writeln!(w, "## map\n");
    let _ = writeln!(
        w,
        "Fine: `par.map(f, data)` over {} f64 items, f = 16 dependent multiply-then-add steps (~10 ns, measured by the serial-loop row). \
         Coarse: McUtils `map_applier`: `par.map_chunks(mapped_func, combinations({cn}, {cr}))`, \
         every permutation of every tuple walked with Heap's algorithm, {} `u32` results. Both \
         run inside `run` (every rank takes part). Baselines: hand-written rayon \
         (`into_par_iter().map(f).collect()`; coarse: one `Vec` per tuple, then `concat`) on a pool of P threads, and a \
         serial loop. Python: `multiprocessing.Pool(P).map` (coarse: `chunksize` = one chunk per \
         worker, like `vectorized=True`); for serial, a Python loop.\n",
        plan.fine_n,
        crate::tasks::coarse_len(cn, cr)
    );
    let _ = writeln!(
        w,
        "| workload | backend | ranks | ours | baseline | ratio | serial loop | speed-up vs serial loop | Python (same run) | McUtils (measured separately) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    for (name, kf, mc_metric) in [
        (
            "fine",
            plan::k_fine as fn(usize) -> String,
            "finemap_1000000".to_string(),
        ),
        (
            "coarse",
            plan::k_coarse as fn(usize) -> String,
            format!("map_n{cn}_r{cr}"),
        ),
    ] {
        let serial = store.get("serial_loop", &kf(1));
        let mut rows: Vec<(&str, usize)> = vec![("serial", 1)];
        for backend in ["threads", "processes", "mpi"] {
            for &p in &plan.ranks {
                rows.push((backend, p));
            }
        }
        for (backend, p) in rows {
            let ours = store.get(backend, &kf(p));
            let (b, bname) = if backend == "serial" {
                (serial.clone(), "serial loop")
            } else {
                (store.get("rayon", &kf(p)), "rayon")
            };
            let speedup = match (&ours, &serial) {
                (Ok(o), Ok(s)) if *o > 0.0 => format!("{:.2}×", s / o),
                _ => "–".into(),
            };
            let py = if backend == "serial" {
                labelled("loop", &store.get("py:serial", &kf(1)))
            } else {
                labelled("Pool.map", &store.get("py:pool", &kf(p)))
            };
            let mc = if name == "fine" && plan.fine_n != 1_000_000 {
                "–".into()
            } else {
                mc_cell(store, backend, p, &mc_metric, 1.0)
            };
            let _ = writeln!(
                w,
                "| {name} | {backend} | {p} | {} | {} | {} | {} | {speedup} | {py} | {mc} |",
                fmt_cell(&ours),
                labelled(bname, &b),
                fmt_ratio(&ours, &b),
                fmt_cell(&serial),
            );
        }
    }
    let _ = writeln!(w);

    // Pool-style maps.
    let _ = writeln!(
        w,
        "## Pool-style maps: chunks handed to whichever rank is free\n"
    );
    let _ = writeln!(
        w,
        "`par.map(f, data)` called on main outside a region: the map opens a region itself, and \
         by default (`Schedule::Auto`, guided chunks) main hands each rank its next chunk when it \
         returns the last, computing its own share meanwhile; results in input order. \
         Imbalanced: item `i` of 150 waits `(i + 1) × 100 µs` (linear), or 400 items of 1 ms of \
         which 8 wait 30 ms (heavy). The items wait (`thread::sleep`) rather than compute, so \
         that 4 ranks on 2 cores do not compete for the cores and the ideal, the serial loop's \
         time over P (measured in the same run), can be reached. `static` is the same map with \
         `Schedule::Static`: one contiguous chunk per rank, the split McUtils' `map` makes. \
         Fine and coarse: the workloads of the table above, pool-style (registered fns, \
         `map` and `map_chunks`), against the same rayon rows. These pool-style rows and \
         rayon's are each the median of {MAP_REPS} rounds run after the rest of the suite, each \
         round a fresh pool of threads, of processes and of rayon threads and an `mpirun` job, in \
         an order that turns from round to round (the same code's fine map on `threads:4` took \
         1.16× rayon in one report and 1.62× in the next); the rayon figures of the table above \
         are these too.\n"
    );
    let _ = writeln!(
        w,
        "| workload | backend | ranks | ours (dynamic) | ideal (serial loop / P) | ratio | static split | ratio |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|");
    for kind in crate::workloads::Imbalance::ALL {
        let serial = store.get("serial_loop", &plan::k_imbalanced(kind.key(), "serial", 1));
        for backend in ["threads", "processes", "mpi"] {
            for &p in &plan.ranks {
                let ideal = serial.clone().map(|s| s / p as f64);
                let ours = store.get(backend, &plan::k_imbalanced(kind.key(), "dynamic", p));
                let stat = store.get(backend, &plan::k_imbalanced(kind.key(), "static", p));
                let _ = writeln!(
                    w,
                    "| {} | {backend} | {p} | {} | {} | {} | {} | {} |",
                    kind.key(),
                    fmt_cell(&ours),
                    fmt_cell(&ideal),
                    fmt_ratio(&ours, &ideal),
                    fmt_cell(&stat),
                    fmt_ratio(&stat, &ideal),
                );
            }
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "| workload | backend | ranks | pool-style | rayon | ratio | inside `run` (table above) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for (name, kf) in [
        ("fine", plan::k_fine as fn(usize) -> String),
        ("coarse", plan::k_coarse as fn(usize) -> String),
    ] {
        for backend in ["threads", "processes", "mpi"] {
            for &p in &plan.ranks {
                let ours = store.get(backend, &plan::k_pool(name, p));
                let b = store.get("rayon", &kf(p));
                let _ = writeln!(
                    w,
                    "| {name} | {backend} | {p} | {} | {} | {} | {} |",
                    fmt_cell(&ours),
                    labelled("rayon", &b),
                    fmt_ratio(&ours, &b),
                    fmt_cell(&store.get(backend, &kf(p))),
                );
            }
        }
    }
    let _ = writeln!(w);

    // Start-up.
    let _ = writeln!(w, "## Start-up: `enter()` + drop\n");
    let _ = writeln!(
        w,
        "The outermost `enter()` starts the ranks and its drop stops them (threads: P-1 threads; \
         processes: P-1 worker processes, re-executing this binary). Baselines: building and \
         dropping a rayon pool of P threads; spawning P-1 copies of this executable with \
         `std::process::Command` that exit at once, and waiting for them. Python: \
         `Pool(P)` + `close()` + `join()`. McUtils' figure is construct + enter + apply(noop) + \
         exit, not quite the same measure.\n"
    );
    let _ = writeln!(
        w,
        "| backend | ranks | ours | baseline | ratio | Python (same run) | McUtils (measured separately) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for (backend, base, base_name) in [
        ("threads", "rayon", "rayon pool"),
        ("processes", "rawsock", "Command spawn"),
    ] {
        for &p in &plan.ranks {
            let key = plan::k_startup(p);
            let ours = store.get(backend, &key);
            let b = store.get(base, &key);
            let py = if backend == "processes" {
                labelled("Pool", &store.get("py:pool", &key))
            } else {
                "–".into()
            };
            let _ = writeln!(
                w,
                "| {backend} | {p} | {} | {} | {} | {py} | {} |",
                fmt_cell(&ours),
                labelled(base_name, &b),
                fmt_ratio(&ours, &b),
                mc_cell(store, backend, p, "startup_fresh", 1.0)
            );
        }
    }
    let _ = writeln!(
        w,
        "\nMPI start-up is `mpirun`'s, outside the library; it is not measured here."
    );

    // Memory.
    let gib = |c: &Cell| match c {
        Ok(v) => format!("{:.2} GiB", v / f64::from(1u32 << 30)),
        Err(e) => short(e),
    };
    let bytes = store.get("memory", "bcast:bytes");
    let _ = writeln!(
        w,
        "\n## Memory: a large `broadcast_into` on processes:4\n\n\
         Main broadcasts {} of f64 from its buffer into each worker's; every rank's peak \
         resident set (`VmHWM`) afterwards, in a process of its own. The buffer itself \
         is the floor: target main < 1.3×, workers < 1.2× the payload.\n",
        gib(&bytes)
    );
    let _ = writeln!(
        w,
        "| payload | main's peak | largest worker's peak | broadcast time |"
    );
    let _ = writeln!(w, "|---|---|---|---|");
    let _ = writeln!(
        w,
        "| {} | {} | {} | {} |",
        gib(&bytes),
        gib(&store.get("memory", "bcast:main")),
        gib(&store.get("memory", "bcast:worker")),
        fmt_cell(&store.get("memory", "bcast:secs"))
    );
    s
}

/// `1 kB`, `10 MB`: axis labels of a log scale fall on powers of ten.
fn decimal_bytes(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.0} GB", x / 1e9),
        x if x >= 1e6 => format!("{:.0} MB", x / 1e6),
        x if x >= 1e3 => format!("{:.0} kB", x / 1e3),
        x => format!("{x:.0} B"),
    }
}

/// Bandwidth (MB/s) against message size, log-log, one line per source.
fn plot(store: &Store, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let plan = store.plan.clone().unwrap_or_else(|| Plan::new(false));
    let series: [(&str, &str); 9] = [
        ("threads", "threads (ours)"),
        ("channel", "mpsc channel (threads)"),
        ("processes", "processes (ours)"),
        ("mpi", "mpi (ours)"),
        ("memcpy", "memcpy"),
        ("rawsock", "raw socket"),
        ("rawmpi", "raw rsmpi"),
        ("py:mpi4py_buffer", "mpi4py buffer"),
        ("py:mpi4py_pickle", "mpi4py pickle"),
    ];
    let mut lines = Vec::new();
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (src, label) in series {
        let pts: Vec<(f64, f64)> = plan
            .pp_bytes
            .iter()
            .filter_map(|&b| {
                store
                    .get(src, &plan::k_pp(b))
                    .ok()
                    .filter(|t| *t > 0.0)
                    .map(|t| (b as f64, b as f64 / t / 1e6))
            })
            .collect();
        for &(_, y) in &pts {
            lo = lo.min(y);
            hi = hi.max(y);
        }
        if !pts.is_empty() {
            lines.push((label, pts));
        }
    }
    if lines.is_empty() {
        return Err("no ping-pong figures".into());
    }
    let xmin = *plan.pp_bytes.iter().min().unwrap_or(&8) as f64;
    let xmax = *plan.pp_bytes.iter().max().unwrap_or(&(16 << 20)) as f64;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Point-to-point bandwidth (ping-pong, one way; threads move the buffer, no copy)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (xmin / 2.0..xmax * 2.0).log_scale(),
            (lo / 2.0..hi * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("message size (bytes)")
        .y_desc("MB/s")
        .x_label_formatter(&|x| decimal_bytes(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (i, (label, pts)) in lines.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The MPI backend against raw rsmpi level for level: both at
/// `MPI_THREAD_MULTIPLE` (the backend's default) and both at
/// `MPI_THREAD_SINGLE` (`MPI_Init`'s).
fn thread_level_section(store: &Store, plan: &Plan, w: &mut String) {
    let _ = writeln!(w, "## MPI: thread levels\n");
    let _ = writeln!(
        w,
        "The backend asks MPI for `MPI_THREAD_MULTIPLE` (any thread may call MPI at any time; \
         ULFM's watchdog revokes communicators from its own thread; mpi4py's default too); raw \
         rsmpi's `initialize` (`MPI_Init`) gets `MPI_THREAD_SINGLE`. Open MPI 4.1 is as slow at \
         `FUNNELED` and `SERIALIZED` as at `MULTIPLE` (measured with raw rsmpi: only `SINGLE` \
         is faster). So the calls where the level weighs most (ping-pong one way, ours \
         `send_pod`/`receive_pod` and `_into`; an empty region's dispatch against a barrier; an \
         allreduce of one f64) are measured at both levels, ours and raw rsmpi's \
         (`initialize_with_threading(Multiple)`), and compared level for level. \
         `PARALLELIZER_MPI_THREAD_LEVEL=single` makes the backend call MPI from its main thread \
         only (a failure then ends the job even under ULFM). Such figures swing by tens of \
         percent, up to 2.5×, from one job to the next on these machines (raw rsmpi's 8 B \
         ping-pong took 278–776 ns in four jobs in a row), so each of the four runs in \
         {LEVEL_REPS} jobs of its own, alternated, and each figure is the median of the jobs' \
         medians; the MPI rows of these calls in the other tables (dispatch, every ping-pong, \
         allreduce of one f64) are the same medians (ours at `multiple`, the default; raw rsmpi \
         at `single`, its default). \"in our job\" is raw rsmpi's same call (`MPI_Barrier`, \
         `MPI_Send`/`MPI_Recv` on one buffer, `MPI_Allreduce`) on `COMM_WORLD`, each a region \
         of its own right after ours in each of our jobs (so at our job's thread level and \
         placement; `benches/src/in_job.rs`), the median of those jobs: the like-for-like \
         baseline, which the job-to-job swings do not move apart from ours.\n"
    );
    let _ = writeln!(
        w,
        "| workload | ranks | mpi (multiple) | raw rsmpi multiple | ratio | raw rsmpi in our job \
         (ratio) | mpi single | raw rsmpi single | ratio | raw rsmpi in our job (ratio) |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<(String, usize, String, String)> = Vec::new();
    for &p in plan.ranks.iter().filter(|&&p| p > 1) {
        let d = plan::k_dispatch(p);
        rows.push(("run (empty region)".into(), p, d.clone(), d));
    }
    for &b in plan.pp_bytes.iter().filter(|&&b| b <= 1 << 10) {
        let raw = plan::k_pp(b);
        rows.push((
            format!("ping-pong {}", size_name(b)),
            2,
            raw.clone(),
            raw.clone(),
        ));
        rows.push((
            format!("ping-pong {} `_into`", size_name(b)),
            2,
            plan::k_pp_into(b),
            raw,
        ));
    }
    for &p in plan.ranks.iter().filter(|&&p| p > 1) {
        let k = crate::data::k_allreduce(1, p);
        rows.push(("allreduce of one f64".into(), p, k.clone(), k));
    }
    for (name, p, key, raw_key) in rows {
        let plain = store.get("mpi_multiple", &key);
        let single = store.get("mpi_single", &key);
        let raw = store.get("rawmpi", &raw_key);
        let raw_multiple = store.get("rawmpi_multiple", &raw_key);
        let in_job = plan::k_in_job(&raw_key);
        let target = if key.starts_with("dispatch") {
            3.0
        } else {
            1.2
        };
        let _ = writeln!(
            w,
            "| {name} | {p} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt_cell(&plain),
            fmt_cell(&raw_multiple),
            fmt_ratio(&plain, &raw_multiple),
            crate::data::with_ratio(&store.get("mpi_multiple", &in_job), &plain, target),
            fmt_cell(&single),
            fmt_cell(&raw),
            fmt_ratio(&single, &raw),
            crate::data::with_ratio(&store.get("mpi_single", &in_job), &single, target),
        );
    }
    let _ = writeln!(w);
}
