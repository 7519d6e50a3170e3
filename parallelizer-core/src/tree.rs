//! Reductions built from point-to-point messages, the defaults of
//! [`Parallelizer`](crate::Parallelizer)'s `reduce_msg`, `allreduce_msg` and
//! `scan_msg`: a binomial tree to main, recursive doubling, and the
//! Hillis–Steele prefix. Each takes `⌈log2 nprocs⌉` rounds of messages
//! instead of gathering every value on main, and combines values in rank
//! order (`combine(lower ranks, higher ranks)`), so an associative op need
//! not be commutative. Also the binomial tree of the MPI dispatch header,
//! and the tree that lent broadcasts are relayed along (`link/relay.rs`).

use crate::error::Result;
use crate::msg::Msg;

/// How a reduction combines two messages: `combine(lower, higher)`, where
/// `lower` holds the values of lower ranks than `higher`.
pub type Combine<'a> = dyn Fn(Msg, Msg) -> Result<Msg> + Sync + 'a;

/// How two ranks swap values in one step: sends `mine` to the partner,
/// returns the partner's.
pub type Exchange<'a> = dyn Fn(&Msg, usize) -> Result<Msg> + 'a;

/// One rank's view of the others for the algorithms here: its place, and
/// messages of the current call to and from any rank.
pub(crate) struct Peers<'a> {
    pub id: usize,
    pub nprocs: usize,
    pub send: &'a dyn Fn(Msg, usize) -> Result<()>,
    pub recv: &'a dyn Fn(usize) -> Result<Msg>,
    /// Sends `mine` to a partner that sends its own in the same step, and
    /// returns the partner's (recursive doubling): a transport that can
    /// lend `mine` for the exchange saves its copy. `None`: a copy sent
    /// with `send`, the partner's taken with `recv`.
    pub exchange: Option<&'a Exchange<'a>>,
}

/// The parent of rank `r > 0` in the binomial tree rooted at 0: `r`
/// without its highest set bit.
pub(crate) fn binomial_parent(r: usize) -> usize {
    debug_assert!(r > 0);
    r - (1 << (usize::BITS - 1 - r.leading_zeros()))
}

/// The children of rank `r` among `n` in that tree, the largest subtree
/// first: `r + 2^k` for every `2^k > r`.
pub(crate) fn binomial_children(r: usize, n: usize) -> impl Iterator<Item = usize> {
    let first = if r == 0 {
        1
    } else {
        1 << (usize::BITS - r.leading_zeros())
    };
    std::iter::successors(Some(first), |bit: &usize| bit.checked_mul(2))
        .map(move |bit| r.saturating_add(bit))
        .take_while(move |&k| k < n)
}

/// Whether main lends a broadcast to rank 1 alone, which heads a binomial
/// tree over ranks 1..n: when `n` is a power of two (4 or more), this tree
/// is no deeper than the binomial one over all `n` ranks, and main, which
/// then waits for one copy instead of `log2 n` at once, returns sooner.
/// Measured on processes:4, 80 MB: main returned after 11.6 ms instead of
/// 16.3 ms, every rank had the data after 26.9 ms instead of 27.8 ms.
fn headed(n: usize) -> bool {
    n >= 4 && n.is_power_of_two()
}

/// The rank `r > 0` takes a lent broadcast from, among `n` (see
/// [`lend_children`]).
pub(crate) fn lend_parent(r: usize, n: usize) -> usize {
    match (headed(n), r) {
        (false, _) => binomial_parent(r),
        (true, 1) => 0,
        (true, _) => 1 + binomial_parent(r - 1),
    }
}

/// The ranks that `r` lends a broadcast to, among `n`: the binomial tree
/// rooted at main, or, when `n` is a power of two, rank 1 alone for main
/// and a binomial tree over ranks 1..n below it. A parent's rank is always
/// below its children's.
pub(crate) fn lend_children(r: usize, n: usize) -> Vec<usize> {
    match (headed(n), r) {
        (false, _) => binomial_children(r, n).collect(),
        (true, 0) => vec![1],
        (true, _) => binomial_children(r - 1, n - 1).map(|k| k + 1).collect(),
    }
}

/// The values of every rank combined on rank 0 (binomial tree); `None`
/// elsewhere.
pub(crate) fn reduce(p: &Peers<'_>, mine: Msg, combine: &Combine<'_>) -> Result<Option<Msg>> {
    let mut acc = mine;
    let mut mask = 1;
    while mask < p.nprocs {
        if p.id & mask != 0 {
            // This rank's subtree [id, id + mask) goes to its parent.
            (p.send)(acc, p.id - mask)?;
            return Ok(None);
        }
        if p.id + mask < p.nprocs {
            let higher = (p.recv)(p.id + mask)?;
            acc = combine(acc, higher)?;
        }
        mask <<= 1;
    }
    Ok(Some(acc))
}

/// The values of every rank combined, on every rank (recursive doubling;
/// with a rank count that is not a power of two, the first ranks pair up
/// first and get the result back at the end).
pub(crate) fn allreduce(p: &Peers<'_>, mine: Msg, combine: &Combine<'_>) -> Result<Msg> {
    let n = p.nprocs;
    let pow = if n.is_power_of_two() {
        n
    } else {
        n.next_power_of_two() / 2
    };
    let extra = n - pow;
    let mut acc = mine;
    // Ranks 0..2*extra pair up: the even one hands its value to the odd.
    let virt = if p.id < 2 * extra {
        if p.id.is_multiple_of(2) {
            (p.send)(acc, p.id + 1)?;
            return (p.recv)(p.id + 1);
        }
        let lower = (p.recv)(p.id - 1)?;
        acc = combine(lower, acc)?;
        p.id / 2
    } else {
        p.id - extra
    };
    // The rank that plays virtual rank `v` in the doubling.
    let real = |v: usize| if v < extra { 2 * v + 1 } else { v + extra };
    let mut mask = 1;
    while mask < pow {
        let partner = real(virt ^ mask);
        let theirs = match p.exchange {
            Some(exchange) => exchange(&acc, partner)?,
            None => {
                (p.send)(acc.duplicate()?, partner)?;
                (p.recv)(partner)?
            }
        };
        acc = if partner < p.id {
            combine(theirs, acc)?
        } else {
            combine(acc, theirs)?
        };
        mask <<= 1;
    }
    if p.id < 2 * extra {
        (p.send)(acc.duplicate()?, p.id - 1)?;
    }
    Ok(acc)
}

/// Each rank's inclusive prefix: the values of ranks `0..=id` combined
/// (Hillis–Steele: in round `k` rank `r` sends its partial to `r + 2^k`).
pub(crate) fn scan(p: &Peers<'_>, mine: Msg, combine: &Combine<'_>) -> Result<Msg> {
    let mut acc = mine;
    let mut d = 1;
    while d < p.nprocs {
        if p.id + d < p.nprocs {
            (p.send)(acc.duplicate()?, p.id + d)?;
        }
        if p.id >= d {
            let lower = (p.recv)(p.id - d)?;
            acc = combine(lower, acc)?;
        }
        d <<= 1;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{Receiver, Sender, unbounded};

    /// Runs `f` on `n` threads connected by channels (one per ordered
    /// pair), each rank starting from the string of its id; combine
    /// concatenates, so the result shows the order.
    fn on_threads(
        n: usize,
        f: fn(&Peers<'_>, Msg, &Combine<'_>) -> Result<Option<Msg>>,
    ) -> Vec<Option<String>> {
        type Pair = (Sender<Msg>, Receiver<Msg>);
        let links: Vec<Vec<Pair>> = (0..n)
            .map(|_| (0..n).map(|_| unbounded()).collect())
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|id| {
                    let links = &links;
                    s.spawn(move || {
                        let send = |m: Msg, to: usize| {
                            links[id][to].0.send(m).unwrap();
                            Ok(())
                        };
                        let recv = |from: usize| Ok(links[from][id].1.recv().unwrap());
                        let peers = Peers {
                            id,
                            nprocs: n,
                            send: &send,
                            recv: &recv,
                            exchange: None,
                        };
                        let concat = |a: Msg, b: Msg| {
                            let (a, b) = (a.into_value::<String>()?, b.into_value::<String>()?);
                            Ok(Msg::cloneable(a + &b))
                        };
                        f(&peers, Msg::cloneable(id.to_string()), &concat)
                            .unwrap()
                            .map(|m| m.into_value::<String>().unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn all(n: usize) -> String {
        (0..n).map(|i| i.to_string()).collect()
    }

    /// The height of a tree given by its children: its number of stages.
    fn height(n: usize, children: impl Fn(usize, usize) -> Vec<usize>) -> usize {
        (0..n)
            .map(|r| {
                let (mut at, mut depth) = (r, 0);
                while at != 0 {
                    at = (0..at).find(|&p| children(p, n).contains(&at)).unwrap();
                    depth += 1;
                }
                depth
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn every_rank_has_one_parent_whose_children_list_it() {
        type Tree = (fn(usize, usize) -> usize, fn(usize, usize) -> Vec<usize>);
        let trees: [Tree; 2] = [
            (
                |r, _| binomial_parent(r),
                |r, n| binomial_children(r, n).collect(),
            ),
            (lend_parent, lend_children),
        ];
        for (parent, children) in trees {
            for n in 1..40 {
                let mut reached = vec![false; n];
                reached[0] = true;
                for r in 0..n {
                    for k in children(r, n) {
                        assert_eq!(parent(k, n), r, "n={n} k={k}");
                        assert!(k > r && !reached[k], "n={n} k={k}");
                        reached[k] = true;
                    }
                }
                assert!(reached.iter().all(|&x| x), "n={n}");
            }
        }
        assert_eq!(binomial_children(0, 4).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(binomial_children(1, 4).collect::<Vec<_>>(), [3]);
        assert_eq!(binomial_children(0, 8).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(binomial_children(2, 8).collect::<Vec<_>>(), [6]);
    }

    #[test]
    fn main_lends_to_one_rank_only_where_that_adds_no_stage() {
        for n in 2..40 {
            let lent = height(n, lend_children);
            let binomial = height(n, |r, n| binomial_children(r, n).collect());
            assert_eq!(lent, binomial, "n={n}");
            let one = lend_children(0, n).len() == 1;
            assert_eq!(one, n == 2 || (n >= 4 && n.is_power_of_two()), "n={n}");
        }
        assert_eq!(lend_children(0, 4), [1]);
        assert_eq!(lend_children(1, 4), [2, 3]);
        assert_eq!(lend_children(1, 8), [2, 3, 5]);
        assert_eq!(lend_parent(7, 8), 3);
    }

    #[test]
    fn reduce_gives_main_every_value_in_rank_order() {
        for n in 1..=9 {
            let got = on_threads(n, reduce);
            assert_eq!(got[0].as_deref(), Some(all(n).as_str()), "n={n}");
            assert!(got[1..].iter().all(Option::is_none));
        }
    }

    #[test]
    fn allreduce_gives_every_rank_every_value_in_rank_order() {
        for n in 1..=9 {
            let got = on_threads(n, |p, m, c| allreduce(p, m, c).map(Some));
            assert!(
                got.iter().all(|g| g.as_deref() == Some(all(n).as_str())),
                "n={n}: {got:?}"
            );
        }
    }

    #[test]
    fn scan_gives_each_rank_its_prefix() {
        for n in 1..=9 {
            let got = on_threads(n, |p, m, c| scan(p, m, c).map(Some));
            for (r, g) in got.iter().enumerate() {
                assert_eq!(g.as_deref(), Some(all(r + 1).as_str()), "n={n} rank {r}");
            }
        }
    }
}
