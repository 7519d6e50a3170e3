//! The processes transport's [`Board`]: each rank's two posts in the
//! rings' memfd (`ring`), written in turn, so that a rank writing its next
//! post never overwrites the one its peers may still be reading (they have
//! all read the one before it: the call that posted it waited for their
//! posts of it, made after they read the one before).
//!
//! A post is a [`PostCell`] (eight words under a sequence lock). A reader
//! looks at both of a peer's posts for the stamp it wants: ranks that left
//! a region at different points (a release) post in turn from different
//! places.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::link::{Board, Post, PostCell};

use super::ring::{POST, Rings};

/// This rank's posts on the pool's rings.
#[derive(Debug)]
pub(super) struct Posts {
    rings: Arc<Rings>,
    /// Posts made so far (the next goes to `made % 2`).
    made: AtomicUsize,
}

impl Posts {
    pub(super) fn new(rings: Arc<Rings>) -> Posts {
        Posts {
            rings,
            made: AtomicUsize::new(0),
        }
    }
}

/// Post `index` of `rank`.
fn cell(rings: &Rings, rank: usize, index: usize) -> &PostCell {
    const _: () = assert!(POST == std::mem::size_of::<PostCell>());
    let at = rings.post_at(rank, index);
    // SAFETY: `post_at` gives POST = 64 bytes inside the mapping, 8-aligned
    // (a multiple of 64 from the page-aligned start), alive as long as
    // `rings`; a `PostCell` is eight `AtomicU64`s (`repr(transparent)`),
    // and every process accesses these words atomically only.
    unsafe { &*at.cast::<PostCell>() }
}

/// Rank `rank`'s post stamped `stamp`, if it is there and whole.
pub(super) fn read(rings: &Rings, rank: usize, stamp: u64) -> Option<Post> {
    (0..2).find_map(|index| cell(rings, rank, index).load(stamp))
}

/// Whether every rank but this one has posted `stamp`.
pub(super) fn all_posted(rings: &Rings, stamp: u64) -> bool {
    (0..rings.nprocs())
        .filter(|&r| r != rings.rank())
        .all(|r| read(rings, r, stamp).is_some())
}

impl Board for Posts {
    fn post(&self, post: &Post) {
        let index = self.made.fetch_add(1, Ordering::Relaxed) % 2;
        cell(&self.rings, self.rings.rank(), index).store(post);
        self.rings.wake_sleepers();
    }

    fn read(&self, rank: usize, stamp: u64) -> Option<Post> {
        read(&self.rings, rank, stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{stamp_of, type_code};
    use crate::op::{Op, Tag};

    #[test]
    fn a_post_is_read_by_its_stamp_from_either_place_and_wakes_a_sleeper() {
        let (a, b) = super::super::ring::pair(2);
        let (a, b) = (Arc::new(a), Arc::new(b));
        let (pa, pb) = (Posts::new(a.clone()), Posts::new(b.clone()));
        let tag = Tag::new(Op::Allreduce, 0);
        let post = |n: u64, v: f64| {
            Post::new(stamp_of(5, n), tag, type_code("f64"), &v.to_ne_bytes()).unwrap()
        };
        assert_eq!(pb.read(0, stamp_of(5, 0)), None);
        b.sleep();
        pa.post(&post(0, 1.5));
        let mut n = [0u8; 8];
        assert_eq!(rustix::io::read(b.bell(), &mut n).unwrap(), 8);
        b.awake();
        assert_eq!(pb.read(0, stamp_of(5, 0)), Some(post(0, 1.5)));
        assert!(all_posted(&b, stamp_of(5, 0)));
        assert!(!all_posted(&a, stamp_of(5, 0)), "rank 1 has not posted");
        // The next post goes to the other place; both are readable.
        pa.post(&post(1, 2.5));
        assert_eq!(pb.read(0, stamp_of(5, 0)), Some(post(0, 1.5)));
        assert_eq!(pb.read(0, stamp_of(5, 1)), Some(post(1, 2.5)));
        // The third overwrites the first.
        pa.post(&post(2, 3.5));
        assert_eq!(pb.read(0, stamp_of(5, 0)), None);
        assert_eq!(pb.read(0, stamp_of(5, 2)), Some(post(2, 3.5)));
    }
}
