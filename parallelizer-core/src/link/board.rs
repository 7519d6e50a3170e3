//! Posts: a few bytes per rank in memory every rank of a transport reads,
//! for the small all-to-all collectives (a barrier; a reduction or an
//! all-gather of a number). Each rank writes its post once and reads every other rank's
//! straight from memory: one cache line from each peer instead of a
//! message per round through the message layer (`LinkRank::exchange_posts`).
//!
//! A post carries a *stamp* (the region and the call's number among the
//! region's posts, so an old post is never taken for a new one), the call's
//! [`Tag`] (a rank in another collective is a `ContractViolation`, as with
//! messages), its element type and up to [`POST_BYTES`] bytes.

use std::sync::atomic::{AtomicU64, Ordering, fence};

use crate::op::{Op, Tag};

/// Most bytes one post carries.
pub const POST_BYTES: usize = 32;

/// One rank's post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Post {
    stamp: u64,
    tag: Tag,
    ty: u64,
    len: u8,
    bytes: [u8; POST_BYTES],
}

impl Post {
    /// A post of `bytes` (at most [`POST_BYTES`]; `None` if longer) under
    /// `stamp`, for the call `tag`, of elements of the type whose
    /// [`type_code`] is `ty`.
    pub fn new(stamp: u64, tag: Tag, ty: u64, bytes: &[u8]) -> Option<Post> {
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&l| usize::from(l) <= POST_BYTES)?;
        let mut buf = [0; POST_BYTES];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Post {
            stamp,
            tag,
            ty,
            len,
            bytes: buf,
        })
    }

    /// The stamp: which post of which region this is.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    /// The call it is part of.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// Its element type's [`type_code`].
    pub fn ty(&self) -> u64 {
        self.ty
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The post as eight words (a transport stores them): stamp, sequence
    /// number, operation code and length, type code, then the bytes.
    pub fn to_words(&self) -> [u64; 8] {
        let mut w = [0; 8];
        w[0] = self.stamp;
        w[1] = self.tag.seq();
        w[2] = u64::from(self.tag.op().code()) | u64::from(self.len) << 8;
        w[3] = self.ty;
        for (word, chunk) in w[4..].iter_mut().zip(self.bytes.chunks_exact(8)) {
            *word = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
        }
        w
    }

    /// The post stored as `words` ([`to_words`](Post::to_words)); `None`
    /// if they are not one (an unknown operation, a length out of range).
    pub fn from_words(w: &[u64; 8]) -> Option<Post> {
        let op = Op::from_code(u8::try_from(w[2] & 0xff).ok()?)?;
        let len = u8::try_from((w[2] >> 8) & 0xff).ok()?;
        if usize::from(len) > POST_BYTES {
            return None;
        }
        let mut bytes = [0; POST_BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(&w[4..]) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        Some(Post {
            stamp: w[0],
            tag: Tag::new(op, w[1]),
            ty: w[3],
            len,
            bytes,
        })
    }
}

/// The memory one post lives in: eight words that one rank writes and
/// any rank reads, under a sequence lock. The stamp, the first word, is
/// cleared before the others are written and set after them, and a reader
/// loads it again after the others, so a post being overwritten is never
/// read as whole. Shared memory can hold it (it is eight `AtomicU64`s).
///
/// ```
/// use parallelizer_core::{Op, backend::{Post, PostCell, Tag}};
/// let cell = PostCell::default();
/// let post = Post::new(7, Tag::new(Op::Wait, 0), 0, &[]).unwrap();
/// assert_eq!(cell.load(7), None);
/// cell.store(&post);
/// assert_eq!(cell.load(7), Some(post));
/// assert_eq!(cell.load(8), None);
/// ```
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct PostCell([AtomicU64; 8]);

impl PostCell {
    /// Writes `post` over what the cell held.
    pub fn store(&self, post: &Post) {
        let w = &self.0;
        let new = post.to_words();
        w[0].store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        for (word, &v) in w.iter().zip(&new).skip(1) {
            word.store(v, Ordering::Relaxed);
        }
        w[0].store(new[0], Ordering::Release);
    }

    /// The post stamped `stamp`, if the cell holds it whole.
    pub fn load(&self, stamp: u64) -> Option<Post> {
        let w = &self.0;
        if w[0].load(Ordering::Acquire) != stamp {
            return None;
        }
        let mut got = [0; 8];
        got[0] = stamp;
        for (g, word) in got.iter_mut().zip(w).skip(1) {
            *g = word.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        (w[0].load(Ordering::Relaxed) == stamp)
            .then(|| Post::from_words(&got))
            .flatten()
    }
}

/// Memory where every rank of a transport posts and reads posts
/// ([`Transport::board`](super::Transport::board)).
pub trait Board: Send + Sync {
    /// Posts this rank's `post`, where no rank still reads: every rank has
    /// read this rank's post before the last, or will never (it was
    /// released). Wakes any rank that sleeps, waiting for it.
    fn post(&self, post: &Post);

    /// Rank `rank`'s post stamped `stamp`, once it is there.
    fn read(&self, rank: usize, stamp: u64) -> Option<Post>;
}

/// The stamp of post number `n` (from 0) of region `region`: never 0 (the
/// memory's first state), and the same on every rank that makes the same
/// calls.
pub(crate) fn stamp_of(region: u64, n: u64) -> u64 {
    (region & 0xffff_ffff) << 32 | ((n + 1) & 0xffff_ffff)
}

/// A code for the type named `name`, the same in every process of one
/// program (FNV-1a of the name).
pub fn type_code(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_round_trips_through_its_words() {
        let tag = Tag::new(Op::Allreduce, 7);
        let post = Post::new(stamp_of(3, 0), tag, type_code("f64"), &2.5f64.to_ne_bytes()).unwrap();
        let back = Post::from_words(&post.to_words()).unwrap();
        assert_eq!(back, post);
        assert_eq!(back.bytes(), 2.5f64.to_ne_bytes());
        assert_eq!(back.tag(), tag);
        assert!(Post::new(1, tag, 0, &[0; POST_BYTES + 1]).is_none());
        let mut bad = post.to_words();
        bad[2] = 0xff;
        assert!(Post::from_words(&bad).is_none());
        bad[2] = u64::from(Op::Wait.code()) | 200 << 8;
        assert!(Post::from_words(&bad).is_none());
    }

    #[test]
    fn stamps_differ_by_region_and_number_and_are_never_zero() {
        assert_ne!(stamp_of(0, 0), 0);
        assert_ne!(stamp_of(1, 0), stamp_of(2, 0));
        assert_ne!(stamp_of(1, 0), stamp_of(1, 1));
        assert_ne!(type_code("f64"), type_code("i64"));
    }
}
