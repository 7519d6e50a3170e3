//! McUtils parity checks shared by every mode: groups (`subgroup`, McUtils
//! `comm=`; `split`), `apply`, per-rank arguments (`run_with`, McUtils
//! `main_kwargs`) and `is_active()` on ranks. The fns are registered tasks,
//! so worker processes and served MPI ranks run them by name; the
//! `parity_suite!` macro runs them as tests of one mode, and the MPI suite
//! calls the same fns.

use parallelizer::prelude::*;
use serde::{Deserialize, Serialize};

/// What the members of a group saw, on the group's main.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupView {
    /// `(id, nprocs, world_rank)` of every member, in group-rank order.
    pub members: Vec<(usize, usize, usize)>,
    /// The chunk length each member got from a scatter of `n` items.
    pub chunks: Vec<usize>,
    /// What a broadcast from the group's main gave every member.
    pub broadcast: Vec<u32>,
    /// The last member's message to the group's main (point-to-point).
    pub last_says: Option<String>,
    /// Whether `current()` was the group's handle on every member.
    pub current_is_group: Vec<bool>,
    /// Whether `is_active()` held on every member.
    pub active: Vec<bool>,
}

/// Every collective of the API, and point-to-point, inside a group.
#[parallelizer::task]
pub fn group_view(g: &dyn Parallelizer, n: u32) -> Option<GroupView> {
    let members = g.gather((g.id(), g.nprocs(), g.world_rank())).unwrap();
    let chunk = g
        .scatter(g.on_main().then(|| (0..n).collect::<Vec<u32>>()))
        .unwrap();
    let chunks = g.gather(chunk.len()).unwrap();
    let got = g.broadcast(g.on_main().then_some(n * 2)).unwrap();
    let broadcast = g.gather(got).unwrap();
    g.wait().unwrap();
    let last = g.nprocs() - 1;
    let mut last_says = None;
    if last > 0 {
        if g.id() == last {
            g.send(format!("world rank {}", g.world_rank()), 0).unwrap();
        }
        if g.on_main() {
            last_says = Some(g.receive::<String>(last).unwrap());
        }
    }
    let current = parallelizer::current();
    let current_is_group = g
        .gather(current.nprocs() == g.nprocs() && current.id() == g.id())
        .unwrap();
    let active = g.gather(g.is_active()).unwrap();
    Some(GroupView {
        members: members?,
        chunks: chunks?,
        broadcast: broadcast?,
        last_says,
        current_is_group: current_is_group?,
        active: active?,
    })
}

/// What `group_view` gives on the group of world ranks `world` with `n`
/// items.
pub fn expected_view(world: &[usize], n: u32) -> GroupView {
    let size = world.len();
    GroupView {
        members: world
            .iter()
            .enumerate()
            .map(|(i, &w)| (i, size, w))
            .collect(),
        chunks: parallelizer::chunk_sizes(n as usize, size),
        broadcast: vec![n * 2; size],
        last_says: (size > 1).then(|| format!("world rank {}", world[size - 1])),
        current_is_group: vec![true; size],
        active: vec![true; size],
    }
}

/// A group task that panics on its last member (when there are several).
#[parallelizer::task]
pub fn group_panics_on_last(g: &dyn Parallelizer, (): ()) -> usize {
    if g.nprocs() > 1 && g.id() == g.nprocs() - 1 {
        panic!("deliberate panic on group rank {}", g.id());
    }
    g.id()
}

/// One rank's view of a split by parity (keys reversing the order), of
/// collectives on the group and on the parent interleaved in opposite
/// orders on even and odd ranks, of a nested group, and of a second split
/// that leaves rank 0 out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitView {
    pub world: usize,
    pub id: usize,
    pub nprocs: usize,
    /// The world rank of the group's main, broadcast in the group.
    pub group_main: usize,
    /// A broadcast on the parent, between the group's calls.
    pub parent: u32,
    /// The group's members' world ranks, in group-rank order.
    pub members: Vec<usize>,
    /// This rank's id in the group's members in reverse order (a subgroup
    /// made by the members inside the region), and what a gather there
    /// showed the nested group's main.
    pub nested_id: usize,
    pub nested_gather: Option<Vec<usize>>,
    /// `(id, nprocs)` in a split where rank 0 passes no color.
    pub without_main: Option<(usize, usize)>,
    /// A non-member's `subgroup` call is refused.
    pub outsider_refused: bool,
}

#[parallelizer::task]
pub fn split_parity(par: &dyn Parallelizer, (): ()) -> Option<Vec<SplitView>> {
    let me = par.id();
    let half = par
        .split(Some((me % 2) as u32), -(me as i64))
        .unwrap()
        .unwrap();
    let group_bcast = |h: &dyn Parallelizer| h.broadcast(h.on_main().then(|| h.world_rank()));
    let parent_bcast = || par.broadcast(par.on_main().then_some(100u32));
    // The same calls in opposite orders: only separate namespaces keep the
    // group's broadcast and the parent's apart where they share a sender.
    let (group_main, parent) = if me.is_multiple_of(2) {
        let g = group_bcast(&*half).unwrap();
        (g, parent_bcast().unwrap())
    } else {
        let p = parent_bcast().unwrap();
        (group_bcast(&*half).unwrap(), p)
    };
    let members = half.gather(half.world_rank()).unwrap();
    let members = half.broadcast(members).unwrap();
    let reversed: Vec<usize> = (0..half.nprocs()).rev().collect();
    let nested = half.subgroup(&reversed).unwrap();
    let nested_gather = nested.gather(nested.world_rank()).unwrap();
    // Only rank 0 of the half can be left out of a one-member subgroup of
    // its last member, unless it is that member.
    let outsider_refused = if half.nprocs() > 1 && half.id() != half.nprocs() - 1 {
        matches!(
            half.subgroup(&[half.nprocs() - 1]),
            Err(Error::ContractViolation(_))
        )
    } else {
        true
    };
    let without = par.split((me != 0).then_some(7), 0).unwrap();
    let view = SplitView {
        world: par.world_rank(),
        id: half.id(),
        nprocs: half.nprocs(),
        group_main,
        parent,
        members,
        nested_id: nested.id(),
        nested_gather,
        without_main: without.map(|g| (g.id(), g.nprocs())),
        outsider_refused,
    };
    par.gather(view).unwrap()
}

/// What `split_parity` gives on `p` ranks.
pub fn expected_split(p: usize) -> Vec<SplitView> {
    (0..p)
        .map(|me| {
            // Same parity, larger ranks first (keys -rank).
            let members: Vec<usize> = (0..p).rev().filter(|r| r % 2 == me % 2).collect();
            let id = members.iter().position(|&r| r == me).unwrap();
            let n = members.len();
            let nested_id = n - 1 - id;
            // The nested group's main is the half's last member.
            let nested_gather = (nested_id == 0).then(|| members.iter().rev().copied().collect());
            SplitView {
                world: me,
                id,
                nprocs: n,
                group_main: members[0],
                parent: 100,
                members: members.clone(),
                nested_id,
                nested_gather,
                without_main: (me != 0).then(|| (me - 1, p - 1)),
                outsider_refused: true,
            }
        })
        .collect()
}

/// `apply` on a rank's handle inside a region runs on that rank: here every
/// rank applies a gather, so the gathers pair up. A nested `run` of a
/// registered task returns its typed value on every rank too (it used to
/// be a codec error on the workers).
#[parallelizer::task]
pub fn apply_on_ranks(par: &dyn Parallelizer, x: usize) -> Option<Vec<usize>> {
    let nested: Option<Vec<usize>> = par.run(super::chunk_lens, 6).unwrap();
    assert_eq!(nested.is_some(), par.on_main());
    let applied: Option<Vec<usize>> = par.apply(super::chunk_lens, 6).unwrap();
    assert_eq!(applied, nested);
    par.apply(
        |q: &dyn Parallelizer, x: usize| q.gather(q.id() * x).unwrap(),
        x,
    )
    .unwrap()
}

/// Per-rank arguments: main's call gets `data`, the workers `None`.
#[parallelizer::task]
pub fn with_main_args(
    par: &dyn Parallelizer,
    (scale, data): (u64, Option<Vec<u64>>),
) -> Option<(u64, Vec<bool>)> {
    let got = par.gather(data.is_some()).unwrap();
    let mine: u64 = par.scatter(data).unwrap().iter().map(|x| x * scale).sum();
    let total = par.gather(mine).unwrap().map(|v| v.iter().sum());
    total.zip(got)
}

/// `is_active()` on every rank's handle, and on `current()`.
#[parallelizer::task]
pub fn active_everywhere(par: &dyn Parallelizer, (): ()) -> Option<Vec<bool>> {
    let both = par.is_active() && parallelizer::current().is_active();
    par.gather(both).unwrap()
}

/// The group tests every mode runs, as `#[parallelizer::test]`s:
/// `$ranks(n)` builds a parallelizer of the mode with `n` ranks (n >= 1).
#[macro_export]
macro_rules! parity_suite {
    ($ranks:expr $(, hold = $hold:expr)?) => {
        /// McUtils `comm=[0, 1, 2]` of 4 ranks and `comm=[0, 2]` of 3: every
        /// collective inside, renumbered from 0; nested groups; the others
        /// sit out; ranks of failures are the group's.
        #[parallelizer::test]
        fn subgroups_run_every_collective_renumbered() {
            $(let _hold = $hold;)?
            let four = ($ranks)(4);
            let first3 = four.subgroup(&[0, 1, 2]).unwrap();
            assert_eq!((first3.id(), first3.nprocs()), (0, 3));
            assert_eq!(
                first3.run(group_view, 10).unwrap(),
                Some(expected_view(&[0, 1, 2], 10))
            );
            let nested = four.subgroup(&[0, 1, 3]).unwrap().subgroup(&[0, 2]).unwrap();
            assert_eq!(
                nested.run(group_view, 5).unwrap(),
                Some(expected_view(&[0, 3], 5))
            );
            let three = ($ranks)(3);
            let ends = three.subgroup(&[0, 2]).unwrap();
            {
                // Entered once, several regions (and `apply`) on the same workers.
                let _entered = ends.enter().unwrap();
                assert!(ends.is_active() && three.is_active());
                for n in [0, 1, 7] {
                    assert_eq!(
                        ends.run(group_view, n).unwrap(),
                        Some(expected_view(&[0, 2], n))
                    );
                }
                assert_eq!(
                    ends.apply(group_view, 3).unwrap(),
                    Some(expected_view(&[0, 2], 3))
                );
            }
            assert!(!ends.is_active() && !three.is_active());
            match ends.run(group_panics_on_last, ()) {
                Err(Error::WorkerPanicked { rank: 1, message }) => {
                    assert!(message.contains("group rank 1"), "{message}")
                }
                other => panic!("expected group rank 1's panic, got {other:?}"),
            }
            // The parallelizer and the group work after the failure.
            assert_eq!(
                ends.run(group_view, 4).unwrap(),
                Some(expected_view(&[0, 2], 4))
            );
            assert_eq!(three.run(gather_ids, ()).unwrap().unwrap().len(), 3);
        }

        #[parallelizer::test]
        fn subgroup_members_are_checked() {
            $(let _hold = $hold;)?
            let three = ($ranks)(3);
            for (members, rank) in [(&[0, 0][..], 0), (&[0, 3][..], 3), (&[0, 1, 2, 1][..], 1)] {
                match three.subgroup(members) {
                    Err(Error::InvalidRank { rank: r, nprocs: 3 }) => assert_eq!(r, rank),
                    other => panic!("{members:?}: {:?}", other.map(|g| g.nprocs())),
                }
            }
            for members in [&[1, 2][..], &[2, 0][..]] {
                let err = three.subgroup(members).err().unwrap();
                assert!(
                    matches!(err, Error::ContractViolation(ref m) if m.contains("main (rank 0)")),
                    "{members:?}: {err}"
                );
            }
            assert!(three.subgroup(&[]).is_err());
        }

        /// `split` with MPI_Comm_split semantics, interleaved with the
        /// parent's collectives, nested, and with a rank left out.
        #[parallelizer::test]
        fn split_makes_separate_groups() {
            $(let _hold = $hold;)?
            for n in [1, 2, 3, 4] {
                let par = ($ranks)(n);
                assert_eq!(
                    par.run(split_parity, ()).unwrap(),
                    Some(expected_split(n)),
                    "{n} ranks"
                );
            }
        }

        /// McUtils `apply`: `run` = `enter` + `apply`; on rank handles it
        /// runs on that rank.
        #[parallelizer::test]
        fn apply_runs_on_an_entered_parallelizer_and_on_ranks() {
            $(let _hold = $hold;)?
            let par = ($ranks)(3);
            let err = par.apply(chunk_lens, 10).err().unwrap();
            assert!(
                matches!(err, Error::ContractViolation(ref m) if m.contains("enter")),
                "{err}"
            );
            let _entered = par.enter().unwrap();
            assert_eq!(par.apply(chunk_lens, 10).unwrap(), Some(vec![4, 3, 3]));
            assert_eq!(par.apply(apply_on_ranks, 10).unwrap(), Some(vec![0, 10, 20]));
            assert_eq!(par.run(apply_on_ranks, 2).unwrap(), Some(vec![0, 2, 4]));
        }

        /// McUtils `main_kwargs`: arguments only main's call gets.
        #[parallelizer::test]
        fn main_args_reach_main_only() {
            $(let _hold = $hold;)?
            let par = ($ranks)(3);
            let data: Vec<u64> = (1..=10).collect();
            assert_eq!(
                par.run_with(with_main_args, 3, data.clone()).unwrap(),
                Some((165, vec![true, false, false]))
            );
            let _entered = par.enter().unwrap();
            assert_eq!(
                par.apply_with(with_main_args, 1, data).unwrap(),
                Some((55, vec![true, false, false]))
            );
        }

        /// McUtils `active`: true on every rank's handle inside a region.
        #[parallelizer::test]
        fn is_active_on_every_rank() {
            $(let _hold = $hold;)?
            let par = ($ranks)(3);
            assert!(!par.is_active());
            assert_eq!(par.run(active_everywhere, ()).unwrap(), Some(vec![true; 3]));
            let _entered = par.enter().unwrap();
            assert!(par.is_active());
            assert_eq!(par.run(active_everywhere, ()).unwrap(), Some(vec![true; 3]));
        }
    };
}
