//! The plain-data suite (issue 10): the `_into` calls, generic calls on
//! vectors of plain data, reductions, `map_reduce`, and wrong buffer
//! lengths. Each task runs on every rank of a region and returns main's
//! view; [`data_suite!`] runs them on a mode (serial, threads, processes)
//! and compares with what the rank count alone determines, and
//! `tests/mpi_suite.rs` runs them on MPI.

use parallelizer::prelude::*;
use parallelizer::{Reduce, chunk_sizes, plain_data};
use serde::{Deserialize, Serialize};

/// A user type registered as plain data: vectors of it take the raw-bytes
/// path of the generic calls.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, bytemuck::Pod, bytemuck::Zeroable,
)]
#[repr(C)]
pub struct Cell {
    pub x: f64,
    pub id: u32,
    pub pad: u32,
}
plain_data!(Cell);

/// Main's `n` values of the `_into` calls.
pub fn values(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 0.5 - 3.0).collect()
}

/// What the `_into` calls gave every rank, as main sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntoReport {
    /// Each rank's buffer after `broadcast_into`, summed.
    pub broadcast: Vec<f64>,
    /// Each rank's chunk length after `scatter_into`.
    pub chunks: Vec<usize>,
    /// The chunks gathered back with `gather_into`.
    pub gathered: Vec<f64>,
    /// Whether a second scatter and gather into the same vectors kept
    /// their allocations, on each rank.
    pub reused: Vec<bool>,
    /// What each rank received around a ring of `send_slice` /
    /// `receive_into`, summed.
    pub ring: Vec<f64>,
}

/// The report every mode must give for `n` values over `p` ranks.
pub fn into_expected(n: usize, p: usize) -> IntoReport {
    let data = values(n);
    let ring = (0..p)
        .map(|r| {
            let from = (r + p - 1) % p;
            if p == 1 {
                0.0
            } else {
                ring_values(from, n).iter().sum()
            }
        })
        .collect();
    IntoReport {
        broadcast: vec![data.iter().sum(); p],
        chunks: chunk_sizes(n, p),
        gathered: data,
        reused: vec![true; p],
        ring,
    }
}

fn ring_values(rank: usize, n: usize) -> Vec<f64> {
    (0..n).map(|i| (rank * 1000 + i) as f64).collect()
}

/// Every `_into` call with `n` elements.
#[parallelizer::task]
pub fn into_calls(par: &dyn Parallelizer, n: usize) -> Option<IntoReport> {
    let (p, id) = (par.nprocs(), par.id());
    let on = par.on_main();
    let data = values(n);
    let mut buf = if on { data.clone() } else { vec![0.0; n] };
    par.broadcast_into(&mut buf).unwrap();
    let broadcast = par.gather(buf.iter().sum::<f64>()).unwrap();

    let mut mine = Vec::new();
    par.scatter_into(on.then_some(&data[..]), &mut mine)
        .unwrap();
    let chunks = par.gather(mine.len()).unwrap();
    let mut all = Vec::new();
    par.gather_into(&mine, on.then_some(&mut all)).unwrap();
    // Again into the same vectors: nothing new is allocated.
    let (mine_at, all_at) = (mine.as_ptr(), all.as_ptr());
    par.scatter_into(on.then_some(&data[..]), &mut mine)
        .unwrap();
    par.gather_into(&mine, on.then_some(&mut all)).unwrap();
    let kept =
        n == 0 || (mine.is_empty() || mine.as_ptr() == mine_at) && (!on || all.as_ptr() == all_at);
    let reused = par.gather(kept).unwrap();

    // Around a ring; even ranks send first, odd ranks receive first, so a
    // large send that waits for its receiver never waits in a cycle.
    let mut got = vec![0.0; n];
    if p > 1 {
        let (to, from) = ((id + 1) % p, (id + p - 1) % p);
        let out = ring_values(id, n);
        if id % 2 == 0 {
            par.send_slice(&out, to).unwrap();
            par.receive_into(&mut got, from).unwrap();
        } else {
            par.receive_into(&mut got, from).unwrap();
            par.send_slice(&out, to).unwrap();
        }
    }
    let ring = par.gather(got.iter().sum::<f64>()).unwrap();
    Some(IntoReport {
        broadcast: broadcast?,
        chunks: chunks?,
        gathered: all,
        reused: reused?,
        ring: ring?,
    })
}

/// Point-to-point between the forms: a `Vec<f64>` sent by `send`,
/// `send_pod` or `send_slice` is received by `receive`, `receive_pod` or
/// `receive_into` alike (rank 1 to main), small and above the lending
/// threshold of threads.
#[parallelizer::task]
pub fn p2p_forms(par: &dyn Parallelizer, n: usize) -> Option<Vec<f64>> {
    if par.nprocs() < 2 {
        return Some(vec![0.0; 6]);
    }
    let v = values(n);
    match par.id() {
        1 => {
            par.send(v.clone(), 0).unwrap();
            par.send_pod(v.clone(), 0).unwrap();
            par.send_slice(&v, 0).unwrap();
            par.send(v.clone(), 0).unwrap();
            par.send_slice(&v, 0).unwrap();
            par.send_pod(v, 0).unwrap();
            None
        }
        0 => {
            let mut buf = vec![0.0; n];
            let mut sums = Vec::new();
            par.receive_into(&mut buf, 1).unwrap();
            sums.push(buf.iter().sum::<f64>());
            sums.push(par.receive::<Vec<f64>>(1).unwrap().iter().sum());
            sums.push(par.receive_pod::<f64>(1).unwrap().iter().sum());
            sums.push(par.receive_pod::<f64>(1).unwrap().iter().sum());
            sums.push(par.receive::<Vec<f64>>(1).unwrap().iter().sum());
            par.receive_into(&mut buf, 1).unwrap();
            sums.push(buf.iter().sum());
            Some(
                sums.into_iter()
                    .map(|s| s - values(n).iter().sum::<f64>())
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Generic calls on vectors of plain data (numbers and a registered
/// `Pod` type) and forms that pair with each other: main's
/// `broadcast_into` with the workers' generic `broadcast`.
#[allow(clippy::type_complexity)]
#[parallelizer::task]
pub fn generic_plain(
    par: &dyn Parallelizer,
    n: usize,
) -> Option<(Vec<Vec<Cell>>, Vec<u8>, Vec<Vec<u16>>, Vec<f64>)> {
    let on = par.on_main();
    let cells: Vec<Cell> = (0..n)
        .map(|i| Cell {
            x: i as f64,
            id: i as u32,
            pad: 0,
        })
        .collect();
    let got = par.broadcast(on.then(|| cells.clone())).unwrap();
    let cells_seen = par.gather(got).unwrap();
    let bytes = par
        .scatter(on.then(|| (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>()))
        .unwrap();
    let bytes = par.gather(bytes).unwrap().map(|v| v.concat());
    let shorts = par.gather(vec![par.id() as u16; par.id() + 1]).unwrap();
    let mut buf = vec![0.0; 3];
    let mixed = if on {
        buf.copy_from_slice(&[1.0, 2.0, 3.0]);
        par.broadcast_into(&mut buf).unwrap();
        buf
    } else {
        par.broadcast::<Vec<f64>>(None).unwrap()
    };
    let mixed = par.gather(mixed.iter().sum::<f64>()).unwrap();
    Some((cells_seen?, bytes?, shorts?, mixed?))
}

/// Every reduction, as main sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reductions {
    pub reduce_sum: Option<i64>,
    pub allreduce_sum: Vec<i64>,
    pub scan_sum: Vec<i64>,
    pub product: u64,
    pub min_max: (f64, f64),
    pub logical: (i32, i32, bool, bool),
    pub bitwise: (u32, u32, u32),
    pub vectors: (Vec<f64>, Option<Vec<i64>>, Vec<Vec<u32>>),
    pub closures: (Option<String>, String, Vec<String>),
    pub allgather: (Vec<f64>, Vec<Vec<f64>>, Vec<String>),
    /// Empty inputs: an element-wise sum of empty vectors, a reduce of
    /// them, and an allgather where rank `r` gives `r` bytes (main none).
    pub empty: (Vec<f64>, Option<Vec<i32>>, Vec<Vec<u8>>),
    pub undefined: String,
}

/// What every mode must give on `p` ranks.
pub fn reductions_expected(p: usize) -> Reductions {
    let ids = 0..p as i64;
    let names: Vec<String> = (0..p).map(|r| format!("r{r}")).collect();
    Reductions {
        reduce_sum: Some(ids.clone().map(|i| i + 1).sum()),
        allreduce_sum: vec![ids.clone().map(|i| i + 1).sum(); p],
        scan_sum: (0..p as i64)
            .map(|r| (0..=r).map(|i| i + 1).sum())
            .collect(),
        product: (0..p as u64).map(|i| i + 2).product(),
        min_max: ((p as f64 - 1.0) * -1.5, 0.0),
        logical: (i32::from(p == 1), i32::from(p > 1), p == 1, true),
        bitwise: (
            (1u32 << p) - 1,
            !0u32 ^ ((1u32 << p) - 1),
            (0..p).fold(0u32, |a, r| a ^ (1 << r) ^ 1),
        ),
        vectors: (
            vec![(0..p).map(|r| r as f64).sum::<f64>(); 3],
            Some(vec![p as i64 - 1, 10, 0]),
            (0..p)
                .map(|r| vec![(0..=r as u32).sum::<u32>(); 2])
                .collect(),
        ),
        closures: (
            Some(names.join(",")),
            names.join(","),
            (0..p).map(|r| names[..=r].join(",")).collect(),
        ),
        allgather: (
            (0..p).map(|r| r as f64 * 2.0).collect(),
            (0..p).map(|r| vec![r as f64; r + 1]).collect(),
            names,
        ),
        empty: (
            Vec::new(),
            Some(Vec::new()),
            (0..p).map(|r| vec![r as u8; r]).collect(),
        ),
        undefined: "contract violation: the reduction `bitwise and` is not defined for f64; \
                    pass a closure instead"
            .into(),
    }
}

/// Every built-in op, element-wise vectors, closures (in rank order) and
/// allgather of numbers, uneven vectors and strings.
#[parallelizer::task]
pub fn reductions(par: &dyn Parallelizer, (): ()) -> Option<Reductions> {
    let id = par.id();
    let reduce_sum = par.reduce(id as i64 + 1, Reduce::Sum).unwrap();
    let allreduce_sum = par.allreduce(id as i64 + 1, Reduce::Sum).unwrap();
    let allreduce_sum = par.gather(allreduce_sum).unwrap();
    let scan_sum = par
        .gather(par.scan(id as i64 + 1, Reduce::Sum).unwrap())
        .unwrap();
    let product = par.allreduce(id as u64 + 2, Reduce::Product).unwrap();
    let min = par.allreduce(id as f64 * -1.5, Reduce::Min).unwrap();
    let max = par.allreduce(id as f64 * -1.5, Reduce::Max).unwrap();
    let land = par.allreduce(i32::from(id != 1), Reduce::And).unwrap();
    let lor = par
        .allreduce(i32::from(id == par.nprocs() - 1 && id > 0), Reduce::Or)
        .unwrap();
    let band = par.allreduce(id != 1, Reduce::And).unwrap();
    let bor = par.allreduce(id + 1 == par.nprocs(), Reduce::Or).unwrap();
    let bits_or = par.allreduce(1u32 << id, Reduce::BitOr).unwrap();
    let bits_and = par.allreduce(!(1u32 << id), Reduce::BitAnd).unwrap();
    let bits_xor = par.allreduce((1u32 << id) ^ 1, Reduce::BitXor).unwrap();
    let vsum = par.allreduce(vec![id as f64; 3], Reduce::Sum).unwrap();
    let vmax = par
        .reduce(vec![id as i64, 10, -(id as i64)], Reduce::Max)
        .unwrap();
    let vscan = par
        .gather(par.scan(vec![id as u32; 2], Reduce::Sum).unwrap())
        .unwrap();
    let name = format!("r{id}");
    let join = |a: String, b: String| a + "," + &b;
    let c_reduce = par.reduce(name.clone(), join).unwrap();
    let c_all = par.allreduce(name.clone(), join).unwrap();
    let c_scan = par.gather(par.scan(name.clone(), join).unwrap()).unwrap();
    let g_num = par.allgather(id as f64 * 2.0).unwrap();
    let g_vec = par.allgather(vec![id as f64; id + 1]).unwrap();
    let g_str = par.allgather(name).unwrap();
    let e_sum = par.allreduce(Vec::<f64>::new(), Reduce::Sum).unwrap();
    let e_reduce = par.reduce(Vec::<i32>::new(), Reduce::Max).unwrap();
    let e_gather = par.allgather(vec![id as u8; id]).unwrap();
    // Every rank gets the same view.
    let views = par
        .gather((
            product, min, max, land, lor, band, bor, bits_or, bits_and, bits_xor,
        ))
        .unwrap();
    let same = par
        .gather((
            vsum.clone(),
            c_all.clone(),
            g_num.clone(),
            g_vec.clone(),
            g_str.clone(),
        ))
        .unwrap();
    let undefined = par
        .allreduce(1.0f64, Reduce::BitAnd)
        .unwrap_err()
        .to_string();
    let undefined_everywhere = par.gather(undefined.clone()).unwrap();
    if let (Some(v), Some(s), Some(u)) = (&views, &same, &undefined_everywhere) {
        assert!(v.iter().all(|x| x == &v[0]), "ranks disagree: {v:?}");
        assert!(s.iter().all(|x| x == &s[0]), "ranks disagree: {s:?}");
        assert!(u.iter().all(|x| x == &u[0]), "ranks disagree: {u:?}");
    }
    Some(Reductions {
        reduce_sum,
        allreduce_sum: allreduce_sum?,
        scan_sum: scan_sum?,
        product,
        min_max: (min, max),
        logical: (land, lor, band, bor),
        bitwise: (bits_or, bits_and, bits_xor),
        vectors: (vsum, vmax, vscan?),
        closures: (c_reduce, c_all, c_scan?),
        allgather: (g_num, g_vec, g_str),
        empty: (e_sum, e_reduce, e_gather),
        undefined,
    })
}

/// A broadcast of `n` f64 (more than 32 MiB: in pieces where it is not
/// lent), by `broadcast_into` and by the generic call, then again with rank
/// 1's buffer one element longer: its length error, and everyone still in
/// step. Every rank's view: `"<into ok> <generic ok> <second> <ranks>"`.
#[parallelizer::task]
pub fn large_broadcast(par: &dyn Parallelizer, n: usize) -> Option<Vec<String>> {
    let on = par.on_main();
    let fill = |buf: &mut [f64]| {
        for (i, x) in buf.iter_mut().enumerate() {
            *x = i as f64 * 0.5;
        }
    };
    let good = |buf: &[f64]| buf.iter().enumerate().all(|(i, &x)| x == i as f64 * 0.5);
    let mut buf = vec![0f64; n];
    if on {
        fill(&mut buf);
    }
    par.broadcast_into(&mut buf).unwrap();
    let into_ok = good(&buf);
    let generic = par.broadcast(on.then(|| buf.clone())).unwrap();
    let generic_ok = generic.len() == n && good(&generic);
    drop(generic);
    let mut wrong = vec![0f64; if par.id() == 1 { n + 1 } else { n }];
    if on {
        fill(&mut wrong);
    }
    let second = match par.broadcast_into(&mut wrong) {
        Ok(()) if good(&wrong) => "ok".to_string(),
        Ok(()) => "wrong values".to_string(),
        Err(e) => e.to_string(),
    };
    let ranks = par.allreduce(1usize, Reduce::Sum).unwrap();
    par.gather(format!("{into_ok} {generic_ok} {second} {ranks}"))
        .unwrap()
}

/// What [`large_broadcast`] must show on `p` ranks for `n` elements.
pub fn large_broadcast_expected(n: usize, p: usize) -> Vec<String> {
    (0..p)
        .map(|r| match r {
            1 => format!(
                "true true broadcast: the buffer of rank 1 holds {} elements but the call needs {n} {p}",
                n + 1
            ),
            _ => format!("true true ok {p}"),
        })
        .collect()
}

/// Large `receive_into`s (which processes posts on the caller's buffer):
/// messages of one sender arrive in order also when they are all in before
/// the receives (rank 0 waits first), a message of another length or type
/// is an error and is taken, and the next one arrives whole. Main's view:
/// per receive, the sum of what arrived minus what was sent, or "error".
#[parallelizer::task]
pub fn large_receives_into(par: &dyn Parallelizer, n: usize) -> Option<Vec<String>> {
    if par.nprocs() < 2 {
        return Some(large_receives_into_expected());
    }
    let v = |k: usize| -> Vec<f64> { (0..n).map(|i| (i * k) as f64).collect() };
    match par.id() {
        1 => {
            for k in 1..=3 {
                par.send_slice(&v(k), 0).unwrap();
            }
            par.send_slice(&v(4), 0).unwrap(); // received into n + 1
            let words: Vec<u64> = (0..n as u64).collect();
            par.send_slice(&words, 0).unwrap(); // received as f64
            par.send_slice(&v(5), 0).unwrap();
            None
        }
        0 => {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut buf = vec![0.0f64; n];
            let mut got = Vec::new();
            let mut show = |r: parallelizer::Result<()>, buf: &[f64], k: usize| {
                got.push(match r {
                    Ok(()) => format!("{}", buf.iter().sum::<f64>() - v(k).iter().sum::<f64>()),
                    Err(_) => "error".to_string(),
                });
            };
            for k in 1..=3 {
                let r = par.receive_into(&mut buf, 1);
                show(r, &buf, k);
            }
            let mut longer = vec![0.0f64; n + 1];
            let r = par.receive_into(&mut longer, 1);
            show(r, &longer, 4);
            let r = par.receive_into(&mut buf, 1);
            show(r, &buf, 0);
            let r = par.receive_into(&mut buf, 1);
            show(r, &buf, 5);
            Some(got)
        }
        _ => None,
    }
}

/// What [`large_receives_into`] must show.
pub fn large_receives_into_expected() -> Vec<String> {
    ["0", "0", "0", "error", "error", "0"]
        .map(String::from)
        .to_vec()
}

/// Buffers of the wrong length: the rank whose buffer is wrong gets
/// `Error::Length` naming both lengths, the others go on, and nothing
/// hangs. Main's view of every rank's outcomes.
#[parallelizer::task]
pub fn wrong_lengths(par: &dyn Parallelizer, (): ()) -> Option<Vec<Vec<String>>> {
    let (id, p) = (par.id(), par.nprocs());
    let show = |r: parallelizer::Result<()>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let mut seen = Vec::new();
    // broadcast_into: rank 1's buffer is one longer than main's.
    let mut buf = vec![1.5f64; if id == 1 { 4 } else { 3 }];
    seen.push(show(par.broadcast_into(&mut buf)));
    // The same at a length that `processes:2` streams into the buffer (and
    // more ranks lend); rank 1's is one shorter: the message is not landed.
    let mut buf = vec![2.5f64; if id == 1 { 9_999 } else { 10_000 }];
    seen.push(show(par.broadcast_into(&mut buf)));
    // receive_into: rank 1 sends 3 values, main's buffer holds 5.
    if p > 1 {
        if id == 1 {
            par.send_slice(&[1i32, 2, 3], 0).unwrap();
        }
        if id == 0 {
            let mut five = [0i32; 5];
            seen.push(show(par.receive_into(&mut five, 1)));
        } else {
            seen.push("ok".into());
        }
    }
    // An element-wise reduction of vectors of different lengths: an error
    // on every rank (the length error on the rank whose length differs).
    let v = vec![1u64; if id == 1 { 2 } else { 3 }];
    seen.push(show(par.allreduce(v, Reduce::Sum).map(drop)));
    // Everyone is still in step.
    let total = par.allreduce(1usize, Reduce::Sum).unwrap();
    seen.push(format!("{total} ranks"));
    par.gather(seen).unwrap()
}

/// What [`wrong_lengths`] must show on `p` ranks.
pub fn wrong_lengths_expected(p: usize) -> Vec<Vec<String>> {
    (0..p)
        .map(|r| {
            let mut seen = vec![
                if r == 1 {
                    "broadcast: the buffer of rank 1 holds 4 elements but the call needs 3".into()
                } else {
                    "ok".to_string()
                },
                if r == 1 {
                    "broadcast: the buffer of rank 1 holds 9999 elements but the call needs 10000"
                        .into()
                } else {
                    "ok".to_string()
                },
            ];
            if p > 1 {
                seen.push(if r == 0 {
                    "receive: the buffer of rank 0 holds 5 elements but the call needs 3".into()
                } else {
                    "ok".into()
                });
            }
            seen.push(match (p, r) {
                (1, _) => "ok".into(),
                (_, 1) => {
                    "allreduce: the buffer of rank 1 holds 2 elements but the call needs 3".into()
                }
                _ => "contract violation: allreduce: the ranks' vectors have 2 to 3 elements; \
                      every rank must pass main's length (3)"
                    .into(),
            });
            seen.push(format!("{p} ranks"));
            seen
        })
        .collect()
}

/// A region whose arguments are a vector of plain data: every rank gets it.
#[parallelizer::task]
pub fn plain_args(par: &dyn Parallelizer, v: Vec<f64>) -> Option<Vec<f64>> {
    par.gather(v.iter().sum::<f64>()).unwrap()
}

#[parallelizer::task]
pub fn cube(x: u64) -> u64 {
    x * x * x
}

/// `map_reduce` inside a region: a built-in op on numbers, a closure, and
/// no data.
#[allow(clippy::type_complexity)]
#[parallelizer::task]
pub fn map_reduce_in_region(
    par: &dyn Parallelizer,
    n: u64,
) -> Option<(Option<u64>, Option<f64>, Option<String>, Option<u64>)> {
    let on = par.on_main();
    let sum = par
        .map_reduce(cube, on.then(|| (0..n).collect()), Reduce::Sum)
        .unwrap();
    let max = par
        .map_reduce(|x: f64| -x, on.then(|| values(n as usize)), Reduce::Max)
        .unwrap();
    let joined = par
        .map_reduce(
            |x: u64| x.to_string(),
            on.then(|| (0..n).collect()),
            |a: String, b: String| a + &b,
        )
        .unwrap();
    let none = par
        .map_reduce(cube, on.then(Vec::new), Reduce::Sum)
        .unwrap();
    on.then_some((sum, max, joined, none))
}

/// What [`map_reduce_in_region`] gives on main.
pub fn map_reduce_expected(n: u64) -> (Option<u64>, Option<f64>, Option<String>, Option<u64>) {
    let some = n > 0;
    (
        some.then(|| (0..n).map(cube).sum()),
        some.then(|| {
            values(n as usize)
                .iter()
                .map(|x| -x)
                .fold(f64::MIN, f64::max)
        }),
        some.then(|| (0..n).map(|x| x.to_string()).collect()),
        None,
    )
}

/// What one group's leader saw of the suite's calls made in its group:
/// the group's size, then [`into_calls`], [`reductions`] and
/// [`wrong_lengths`] as the group's main saw them.
pub type GroupData = (usize, IntoReport, Reductions, Vec<Vec<String>>);

/// The `_into` calls, every reduction and the wrong lengths inside the
/// groups of a `split` into even and odd ranks (group handles: no native
/// plane on threads and processes, a communicator of its own on MPI).
/// Each group's leader's view, on main: the even ranks', then the odd.
#[parallelizer::task]
pub fn data_in_split_groups(par: &dyn Parallelizer, n: usize) -> Option<Vec<GroupData>> {
    let half = par.split(Some(par.id() as u32 % 2), 0).unwrap().unwrap();
    let into = into_calls(&*half, n);
    let reduced = reductions(&*half, ());
    let wrong = wrong_lengths(&*half, ());
    let mine = match (into, reduced, wrong) {
        (Some(i), Some(r), Some(w)) => Some((half.nprocs(), i, r, w)),
        _ => None,
    };
    let all = par.gather(mine).unwrap()?;
    Some(all.into_iter().flatten().collect())
}

/// What [`data_in_split_groups`] gives on `p` ranks.
pub fn data_in_split_groups_expected(n: usize, p: usize) -> Vec<GroupData> {
    let sizes = [p.div_ceil(2), p / 2];
    sizes
        .into_iter()
        .filter(|&g| g > 0)
        .map(|g| {
            (
                g,
                into_expected(n, g),
                reductions_expected(g),
                wrong_lengths_expected(g),
            )
        })
        .collect()
}

/// The members of the subgroup that the suite makes on `p` ranks: main and
/// the last rank (of one rank, main alone).
pub fn subgroup_members(p: usize) -> Vec<usize> {
    if p == 1 { vec![0] } else { vec![0, p - 1] }
}

/// The plain-data suite on a mode: `$ranks(n)` builds a parallelizer of
/// the mode with `n` ranks, run for each of `$sizes`. With `hold = EXPR`,
/// each test holds `EXPR` while it runs.
#[macro_export]
macro_rules! data_suite {
    ($ranks:expr, $sizes:expr $(, hold = $hold:expr)?) => {
        mod data_suite {
            use super::*;
            use $crate::common::data::*;

            fn each(mut f: impl FnMut(std::sync::Arc<dyn Parallelizer>, usize)) {
                for n in $sizes {
                    let par = ($ranks)(n);
                    let p = par.nprocs();
                    f(par, p);
                }
            }

            #[parallelizer::test]
            fn into_calls_on_even_uneven_empty_and_large_buffers() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    let _entered = par.enter().unwrap();
                    for n in [0, 1, 3, 10, 512 * p, 513 * p, 100_000] {
                        let got = par.run(into_calls, n).unwrap();
                        assert_eq!(got, Some(into_expected(n, p)), "p={p} n={n}");
                    }
                });
            }

            #[parallelizer::test]
            fn every_send_form_pairs_with_every_receive_form() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    for n in [5, 100_000] {
                        let got = par.run(p2p_forms, n).unwrap();
                        assert_eq!(got, Some(vec![0.0; 6]), "p={p} n={n}");
                    }
                });
            }

            #[parallelizer::test]
            fn generic_calls_on_plain_vectors_equal_serial() {
                $(let _hold = $hold;)?
                let serial = from_config("serial").unwrap();
                each(|par, p| {
                    for n in [0, 7, 256, 257, 4096 * p, 4097 * p, 20_000] {
                        let got = par.run(generic_plain, n).unwrap().unwrap();
                        let want = serial.run(generic_plain, n).unwrap().unwrap();
                        assert_eq!(got.0, vec![want.0[0].clone(); p], "p={p} n={n}");
                        assert_eq!(got.1, want.1, "p={p} n={n}");
                        let shorts: Vec<Vec<u16>> = (0..p).map(|r| vec![r as u16; r + 1]).collect();
                        assert_eq!(got.2, shorts);
                        assert_eq!(got.3, vec![6.0; p]);
                    }
                });
            }

            #[parallelizer::test]
            fn every_reduction_op_and_closures_in_rank_order() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    assert_eq!(par.run(reductions, ()).unwrap(), Some(reductions_expected(p)), "p={p}");
                });
            }

            #[parallelizer::test]
            fn broadcasts_larger_than_a_piece_arrive_whole() {
                $(let _hold = $hold;)?
                // 40 MiB and 3 elements: one whole piece of 32 MiB and a
                // short one on transports that send pieces.
                let n = (40 << 20) / 8 + 3;
                each(|par, p| {
                    assert_eq!(par.run(large_broadcast, n).unwrap(), Some(large_broadcast_expected(n, p)), "p={p}");
                });
            }

            #[parallelizer::test]
            fn large_receives_into_keep_order_and_misfits_are_taken() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    for n in [1000, 100_000] {
                        let got = par.run(large_receives_into, n).unwrap();
                        assert_eq!(got, Some(large_receives_into_expected()), "p={p} n={n}");
                    }
                });
            }

            #[parallelizer::test]
            fn wrong_buffer_lengths_are_errors_naming_both_lengths() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    assert_eq!(par.run(wrong_lengths, ()).unwrap(), Some(wrong_lengths_expected(p)), "p={p}");
                });
            }

            #[parallelizer::test]
            fn the_data_calls_work_inside_split_groups() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    for n in [0, 5, 100_000] {
                        let got = par.run(data_in_split_groups, n).unwrap();
                        assert_eq!(got, Some(data_in_split_groups_expected(n, p)), "p={p} n={n}");
                    }
                });
            }

            #[parallelizer::test]
            fn the_data_calls_work_in_a_subgroup_made_on_main() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    let members = subgroup_members(p);
                    let g = par.subgroup(&members).unwrap();
                    let q = members.len();
                    for n in [3, 100_000] {
                        assert_eq!(g.run(into_calls, n).unwrap(), Some(into_expected(n, q)), "p={p} n={n}");
                    }
                    assert_eq!(g.run(reductions, ()).unwrap(), Some(reductions_expected(q)), "p={p}");
                    assert_eq!(g.run(wrong_lengths, ()).unwrap(), Some(wrong_lengths_expected(q)), "p={p}");
                });
            }

            #[parallelizer::test]
            fn pool_style_map_reduce_of_a_task_fn_equals_serial() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    // On processes (and MPI) `cube` goes by name; on serial
                    // and threads each rank folds its own items.
                    for n in [0u64, 1, 5, 1000] {
                        let data = || Some((0..n).collect::<Vec<u64>>());
                        let sum = map_reduce_expected(n).0;
                        assert_eq!(par.map_reduce(cube, data(), parallelizer::Reduce::Sum).unwrap(), sum, "p={p} n={n}");
                        let got = par.map_reduce(cube, data(), |a: u64, b: u64| a + b).unwrap();
                        assert_eq!(got, sum, "p={p} n={n} closure op");
                        let max = par.map_reduce(cube, data(), parallelizer::Reduce::Max).unwrap();
                        assert_eq!(max, n.checked_sub(1).map(cube), "p={p} n={n} max");
                    }
                });
            }

            #[parallelizer::test]
            fn region_arguments_may_be_plain_vectors() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    let got = par.run(plain_args, vec![1.5, 2.5, 4.0]).unwrap();
                    assert_eq!(got, Some(vec![8.0; p]));
                });
            }

            #[parallelizer::test]
            fn map_reduce_in_a_region_equals_serial() {
                $(let _hold = $hold;)?
                each(|par, p| {
                    for n in [0, 1, 5, 1000] {
                        assert_eq!(
                            par.run(map_reduce_in_region, n).unwrap(),
                            Some(map_reduce_expected(n)),
                            "p={p} n={n}"
                        );
                    }
                });
            }
        }
    };
}
