//! Groups of ranks: `subgroup` (McUtils `comm=[...]`, MPI's
//! `MPI_Comm_create_group`) and `split` (`MPI_Comm_split`).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::group::{Group, check_members, group_id, join, members_hash, not_a_member};
use crate::msg::Msg;
use crate::op::Op;
use crate::parallelizer::Parallelizer;
use crate::registry::{self, new};

use super::{Contract, Pairing};

/// Salts of the two ways to make a group, so their ids differ.
const SUBGROUP: u64 = 0x5347;
const SPLIT: u64 = 0x5350;

impl dyn Parallelizer {
    /// The group of the ranks `members`, renumbered from 0 in that order: a
    /// parallelizer of `members.len()` ranks whose collectives pair up among
    /// the members only (McUtils `run(f, comm=[0, 2])`; MPI
    /// `MPI_Comm_create_group`). A rank listed twice or out of range is
    /// [`Error::InvalidRank`].
    ///
    /// - **On main outside a region**, the group is a parallelizer to
    ///   `run` (or `enter` and `apply`) and to call every collective on
    ///   inside its regions. Main must be its first member (its rank 0,
    ///   whose result `run` returns), as McUtils requires of `comm=`; any
    ///   other ranks in any order. The other ranks sit its regions out.
    /// - **Inside a region** (on a rank's handle, in the SPMD models, and on
    ///   `serial`), only the members call it, with the same list, and each
    ///   gets its handle in the group; groups nest. A non-member's call is
    ///   a [`Error::ContractViolation`]; `split` is the form
    ///   every rank calls.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:4").unwrap();
    /// let group = par.subgroup(&[0, 2]).unwrap();
    /// let seen = group.run(|g: &dyn Parallelizer, ()| {
    ///     g.gather((g.id(), g.nprocs())).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(seen, Some(vec![(0, 2), (1, 2)]));
    /// ```
    pub fn subgroup(&self, members: &[usize]) -> Result<Arc<dyn Parallelizer>> {
        check_members(members, self.nprocs())?;
        if !self.in_region() {
            if let Some(rank) = registry::rank_of(self) {
                // Called on the parallelizer inside one of its regions.
                return rank.subgroup(members);
            }
            if members[0] != 0 || !self.on_main() {
                return Err(Error::ContractViolation(format!(
                    "the group {members:?} made outside a region must have main (rank 0) as its \
                     first member: main runs its rank 0 and returns its result (McUtils \
                     requires main in `comm=` too)"
                )));
            }
            let root = self.core().this().ok_or_else(|| {
                Error::ContractViolation(format!(
                    "the `{}` parallelizer was not built by `from_config` or `backend::new`, \
                     so its groups cannot hold on to it",
                    self.mode()
                ))
            })?;
            return Ok(new(Group::new(root, members)));
        }
        if !members.contains(&self.id()) {
            return Err(not_a_member(self.id(), members));
        }
        let key = members_hash(members);
        let number = self.core().next_subgroup(key);
        let id = group_id(&[self.group_id(), SUBGROUP, key, number]);
        join(self, members, id, 0)
    }

    /// Splits the ranks into groups by `color`, as `MPI_Comm_split` does:
    /// every rank calls it; the ranks that pass the same `Some(color)` form
    /// a group, ordered by `key` and then by their rank here; a rank that
    /// passes `None` (MPI_UNDEFINED) gets `None`. Each rank gets its handle
    /// in its group, where collectives pair up among the group only, and
    /// which can be split again.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:4").unwrap();
    /// let sums = par.run(|p: &dyn Parallelizer, ()| {
    ///     // Even and odd ranks; each group sums its members' ids.
    ///     let half = p.split(Some(p.id() as u32 % 2), 0).unwrap().unwrap();
    ///     let sum: usize = half.broadcast(half.gather(p.id()).unwrap().map(|v| v.iter().sum())).unwrap();
    ///     p.gather((half.id(), sum)).unwrap()
    /// }, ()).unwrap();
    /// assert_eq!(sums, Some(vec![(0, 2), (0, 4), (1, 2), (1, 4)]));
    /// ```
    pub fn split(&self, color: Option<u32>, key: i64) -> Result<Option<Arc<dyn Parallelizer>>> {
        let all: Vec<(Option<u32>, i64)> = match self.prologue(Op::Split, Contract::Check)? {
            Pairing::Alone => vec![(color, key)],
            Pairing::Ranks(tag) => {
                let call = crate::trace::call(Op::Split, self.id());
                let made = self.split_ranks(color, key, tag);
                call.end(&made, |_| None);
                return made;
            }
        };
        self.split_from(all, 0)
    }

    /// `split` of several ranks: every rank's color and key to every rank,
    /// then this rank's group.
    fn split_ranks(
        &self,
        color: Option<u32>,
        key: i64,
        tag: crate::op::Tag,
    ) -> Result<Option<Arc<dyn Parallelizer>>> {
        let gathered = self.gather_msg(Msg::new((color, key)), tag)?;
        let gathered: Option<Vec<(Option<u32>, i64)>> = gathered
            .map(|all| all.into_iter().map(Msg::into_value).collect())
            .transpose()?;
        let all = self.broadcast_msg(gathered.map(Msg::new), tag)?;
        let all: Vec<(Option<u32>, i64)> = all.into_value()?;
        if all.len() != self.nprocs() {
            return Err(Error::Protocol(format!(
                "split: {} colors for {} ranks",
                all.len(),
                self.nprocs()
            )));
        }
        // The split's call number makes the groups of two splits
        // differ; every rank agrees on it.
        self.split_from(all, tag.seq())
    }

    /// This rank's group of a split where rank `r` passed `all[r]`.
    fn split_from(
        &self,
        all: Vec<(Option<u32>, i64)>,
        call: u64,
    ) -> Result<Option<Arc<dyn Parallelizer>>> {
        let Some(color) = all[self.id()].0 else {
            return Ok(None);
        };
        let mut members: Vec<usize> = (0..all.len())
            .filter(|&r| all[r].0 == Some(color))
            .collect();
        members.sort_by_key(|&r| (all[r].1, r));
        let id = group_id(&[self.group_id(), SPLIT, call, u64::from(color)]);
        join(self, &members, id, 0).map(Some)
    }
}
