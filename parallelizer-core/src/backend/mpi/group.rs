//! A group's handle on MPI (issue 12 groups, issue 11 failures): the
//! members' own communicator (`MPI_Comm_create_group`), tied to the region
//! it was made in so that a failure inside the group's calls is the
//! region's failure like any other.
//!
//! A group's communicator (and its duplicate for plain-data parts) is made
//! inside a region (a task's `subgroup` or
//! `split`, or the region of a group made on main), from the region's
//! communicator, and registered with the region running on this rank
//! (`fate::Current`). Its calls go through the region's checks
//! ([`Mpi::data_call`]): once the ranks agreed that the region failed they
//! fail at once, and a call released by ULFM brings this rank into the
//! agreement. A rank whose task fails revokes the region's communicator
//! *and* the groups' it is a member of, so members blocked in a group's
//! collective are released (with ULFM; without, the failed rank aborts
//! the job after `abort_grace_ms`, as for any region).

use std::ffi::c_int;
use std::sync::Arc;

use super::handles::{self, Comm};
use super::{Mpi, Role, calls, fate};
use crate::error::Result;
use crate::parallelizer::{Core, Parallelizer};

impl Mpi {
    /// The handle of this rank in the group of `members` (of this handle's
    /// ranks) whose id is `group`.
    pub(super) fn group_of(&self, members: &[usize], group: u64) -> Result<Arc<dyn Parallelizer>> {
        // Any tag up to 32767 (the least MPI_TAG_UB) tells concurrent
        // creations apart; every member derives the same from the id.
        let tag = (group % 32768) as c_int;
        // The region a group of a group belongs to is its parent's.
        let region = match self.role {
            Role::Group => self.region.clone(),
            _ => fate::current(),
        };
        let parent = match (&region, self.role) {
            (_, Role::Group) => self.comm,
            (Some(cur), _) => cur.comm,
            (None, _) => self.world.data(),
        };
        let comm = handles::create_group(parent, members, tag)?;
        // The plain-data parts' own: collective over the members too,
        // which all make the group now.
        let plain = match handles::dup_returning_errors(comm) {
            Ok(plain) => plain,
            Err(e) => {
                handles::free(comm);
                return Err(e);
            }
        };
        if let Some(cur) = &region {
            if self.world.faults.is_ulfm() {
                // No member may revoke them while another is still
                // making them (Open MPI 5 crashes that one): each leaves
                // this barrier only once every member has made both.
                if let Err(e) = calls::barrier(plain) {
                    let e = self.failed_call(cur, plain, e);
                    handles::free(plain);
                    handles::free(comm);
                    return Err(e);
                }
            }
            cur.add_group(comm);
            cur.add_group(plain);
        }
        let handle: Arc<dyn Parallelizer> = Arc::new(Mpi {
            core: Core::for_group(self.core.config_arc().clone(), 0),
            world: self.world,
            role: Role::Group,
            comm,
            plain,
            group,
            region,
            limit_bytes: self.limit_bytes,
            grace: self.grace,
            threads: self.threads,
            pool: self.pool.clone(),
            // `verify` checks the region's own collectives (one sequence
            // of calls per region), not a group's.
            verify: false,
            wire_config: std::sync::OnceLock::new(),
            posted: Default::default(),
        });
        handle.core().bind_handle(Arc::downgrade(&handle));
        Ok(handle)
    }

    /// The communicators (user messages, plain-data parts) and region of a
    /// data call of this handle: a group's own, or the region's running
    /// here (outside a region, the world's, with none).
    pub(super) fn call_comms(&self) -> (Comm, Comm, Option<Arc<fate::Current>>) {
        if self.role == Role::Group {
            return (self.comm, self.plain, self.region.clone());
        }
        match fate::current() {
            Some(cur) => (cur.comm, cur.plain, Some(cur)),
            None => (self.world.data(), self.world.plain(), None),
        }
    }
}

impl Drop for Mpi {
    fn drop(&mut self) {
        if self.role != Role::Group {
            return;
        }
        // This handle alone holds its group's communicators.
        for comm in [self.plain, self.comm] {
            match &self.region {
                Some(cur) => cur.free_group(comm),
                None => handles::free(comm),
            }
        }
    }
}
