//! The small all-to-all collectives on the transport's board
//! (`crate::link::board`): a barrier, and the exchange behind the
//! reductions and the all-gather of a number, post this rank's bytes once
//! and read every other rank's post, where messages took `log2 nprocs` rounds through the message
//! layer (an all-reduce of one `f64` on `processes:2`: 1.6-1.7 µs by
//! message, against MPI's 0.3 µs).
//!
//! They keep the protocol's guarantees: a post counts as a packet sent to
//! every peer and a post read as one received, so main's watch judges a
//! wait for a post as it judges a wait for a message (a peer that finished
//! without posting is a deadlock); a release or a lost peer ends the wait
//! as it ends a receive; and a peer in another call is a
//! `ContractViolation`, as with messages.

use crate::error::{Error, Result};
use crate::link::{Board, Post, Transport, stamp_of, type_code};
use crate::op::Tag;
use crate::plain::PodType;

use super::LinkRank;

impl<T: Transport> LinkRank<T> {
    /// Hands every rank's `bytes` (plain data of type `ty`), in rank
    /// order, to `each`: this rank posts its own and reads the others'.
    /// `None` if the transport has no board or `bytes` do not fit a post;
    /// every rank must decide alike, so the caller passes a length that
    /// depends on the type only.
    pub(super) fn exchange_posts(
        &self,
        ty: PodType,
        bytes: &[u8],
        tag: Tag,
        each: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
    ) -> Option<Result<()>> {
        let board = self.transport.board()?;
        let mine = {
            let mut st = self.lock();
            let mine = Post::new(
                stamp_of(self.region, st.posts),
                tag,
                type_code(ty.name),
                bytes,
            )?;
            st.posts += 1;
            mine
        };
        Some(self.exchange_on(board, &mine, ty, each))
    }

    fn exchange_on(
        &self,
        board: &dyn Board,
        mine: &Post,
        ty: PodType,
        each: &mut dyn FnMut(usize, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let me = self.id;
        self.before_send((0..self.nprocs).filter(move |&r| r != me))?;
        board.post(mine);
        for r in 0..self.nprocs {
            if r == self.id {
                each(r, mine.bytes())?;
                continue;
            }
            let read = |st: &mut super::State| {
                let post = board.read(r, mine.stamp())?;
                st.got[r] += 1;
                Some(Ok(post))
            };
            let post = self.wait_on(r, mine.tag(), Some(mine.stamp()), read)?;
            self.check_post(mine, &post, r, ty)?;
            each(r, post.bytes())?;
        }
        Ok(())
    }

    /// An error unless rank `r`'s `post` is of the same call and type as
    /// this rank's `mine`.
    fn check_post(&self, mine: &Post, post: &Post, r: usize, ty: PodType) -> Result<()> {
        let tag = mine.tag();
        if post.tag() != tag {
            return Err(Error::ContractViolation(format!(
                "rank {} is in {tag} but rank {r} posted for its {}; every rank must make \
                 the same collective calls in the same order",
                self.id,
                post.tag()
            )));
        }
        if post.ty() != mine.ty() || post.bytes().len() != mine.bytes().len() {
            return Err(Error::Codec(format!(
                "rank {} passed values of type {} to {tag} but rank {r} passed another type; \
                 every rank must pass the same type",
                self.id, ty.name
            )));
        }
        Ok(())
    }
}
