//! Loans: plain data that a rank lends to ranks of the same process for the
//! duration of one call, so that they copy it straight out of the caller's
//! buffer (one copy, no message buffer in between): the rendezvous of the
//! plain-data calls on transports whose ranks share memory
//! ([`Transport::shares_memory`](super::Transport::shares_memory)).
//!
//! The lender wraps its buffer with [`lend`], sends [`Lent`] notes as the
//! bodies of its data packets, and waits for every borrower's
//! acknowledgement (an ordinary data packet, so aborts and deadlock
//! detection see the wait). Whatever happens meanwhile — an abort, an
//! error, a panic — `lend` revokes the loan before it returns, and a
//! revocation waits for copies in progress: a borrower never reads the
//! buffer after the lender's borrow of it has ended.

use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::plain::PodType;

use super::spread::Spread;

/// The lent bytes: where they start and how many.
#[derive(Clone, Copy)]
struct Span {
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `Span` is only dereferenced by `Loan::copy_to`, under the
// loan's read lock while the loan is not revoked, which is while the
// lender's shared borrow of the bytes lives (module docs): reading shared
// bytes from another thread is what `&[u8]: Send` allows.
unsafe impl Send for Span {}
// SAFETY: as for `Send`; `&Span` gives nothing but the same reads.
unsafe impl Sync for Span {}

/// A buffer lent for one call (see the module docs).
pub(crate) struct Loan {
    slot: RwLock<Option<Span>>,
}

impl Loan {
    /// Copies `dst.len()` bytes from `offset` of the lent bytes into `dst`,
    /// on as many threads as `spread` allows. An error if the loan was
    /// revoked (the lender gave up: its call failed) or the range is
    /// outside the lent bytes.
    pub(crate) fn copy_to(&self, offset: usize, dst: &mut [u8], spread: Spread) -> Result<()> {
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        let span = (*slot).ok_or_else(|| {
            Error::Protocol("a lent buffer was read after its owner's call ended".into())
        })?;
        let end = offset.checked_add(dst.len()).filter(|&end| end <= span.len);
        if end.is_none() {
            return Err(Error::Protocol(format!(
                "a read of {} bytes at {offset} of a lent buffer of {} bytes",
                dst.len(),
                span.len
            )));
        }
        // SAFETY: the read lock is held (until this returns, after every
        // helper thread of `spread` ended) and the loan is not revoked, so
        // the lender's shared borrow of `span` is alive (it revokes under the
        // write lock before the borrow ends) and nobody writes the bytes;
        // `offset..offset + dst.len()` lies inside the span (checked above).
        // `dst` is this rank's own `&mut`, so it cannot overlap the lender's
        // shared borrow.
        let src = unsafe { std::slice::from_raw_parts(span.ptr.add(offset), dst.len()) };
        spread.copy_from(dst, src);
        Ok(())
    }
}

/// Lends `bytes` for the duration of `f`: `f` hands out the loan (in
/// [`Lent`] notes) and waits for the borrowers; when `f` returns or
/// unwinds, the loan is revoked, waiting for any copy in progress.
pub(crate) fn lend<R>(bytes: &[u8], f: impl FnOnce(&Arc<Loan>) -> R) -> R {
    struct Revoke<'a>(&'a Loan);
    impl Drop for Revoke<'_> {
        fn drop(&mut self) {
            *self.0.slot.write().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
    let loan = Arc::new(Loan {
        slot: RwLock::new(Some(Span {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        })),
    });
    let _revoke = Revoke(&loan);
    f(&loan)
}

/// The body of a packet that lends plain data: `len` bytes at `offset` of
/// the loan, elements of `ty`. Local to the process (it cannot be encoded).
pub(crate) struct Lent {
    pub loan: Arc<Loan>,
    pub offset: usize,
    pub len: usize,
    pub ty: PodType,
}

impl Lent {
    /// The message that carries this note.
    pub(crate) fn into_msg(self) -> Msg {
        Msg::local(self)
    }

    /// The note a message carries, if it is one; the message back if not.
    pub(crate) fn from_msg(msg: Msg) -> std::result::Result<Lent, Msg> {
        msg.into_local_of::<Lent>()
    }

    /// The number of elements lent.
    pub(crate) fn elements(&self) -> usize {
        self.ty.elements(self.len)
    }

    /// An error unless the lent elements are of type `ty`.
    pub(crate) fn check(&self, ty: PodType) -> Result<()> {
        if self.ty.id == ty.id {
            return Ok(());
        }
        Err(ty.mismatch(self.ty.vec_name))
    }

    /// A copy of the lent bytes as an owned message of plain data (what a
    /// typed `receive` of a `Vec` takes over), in 8-byte words when the
    /// elements are 8-byte aligned. The copy goes into fresh memory, so it
    /// stays on this thread (`spread.rs`).
    pub(crate) fn to_msg(&self) -> Result<Msg> {
        let mut words = vec![0u64; self.len.div_ceil(8)];
        self.loan.copy_to(
            self.offset,
            &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..self.len],
            Spread::ONE,
        )?;
        Ok(Msg::from_words(words, self.len).sent_as(self.ty.vec_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loan_is_readable_until_its_lender_returns() {
        let data: Vec<u8> = (0..16).collect();
        let kept = lend(&data, |loan| {
            let mut out = [0u8; 4];
            loan.copy_to(4, &mut out, Spread::ONE).unwrap();
            assert_eq!(out, [4, 5, 6, 7]);
            assert!(loan.copy_to(14, &mut out, Spread::ONE).is_err());
            loan.clone()
        });
        let mut out = [0u8; 1];
        assert!(kept.copy_to(0, &mut out, Spread::ONE).is_err());
    }

    #[test]
    fn a_large_copy_on_several_threads_reads_the_right_bytes() {
        let data: Vec<u8> = (0..(24usize << 20)).map(|i| (i % 251) as u8).collect();
        let mut out = vec![0u8; data.len() - 3];
        lend(&data, |loan| loan.copy_to(3, &mut out, Spread::among(1))).unwrap();
        assert!(out[..] == data[3..]);
    }

    #[test]
    fn notes_travel_as_local_messages_and_copy_out() {
        let data = vec![1.5f64, 2.5];
        let got = lend(bytemuck::cast_slice(&data), |loan| {
            let note = Lent {
                loan: loan.clone(),
                offset: 8,
                len: 8,
                ty: PodType::of::<f64>(),
            };
            let back = Lent::from_msg(note.into_msg()).ok().unwrap();
            assert!(back.check(PodType::of::<u32>()).is_err());
            back.to_msg().unwrap().into_value::<Vec<f64>>().unwrap()
        });
        assert_eq!(got, [2.5]);
        assert!(Lent::from_msg(Msg::new(3u8)).is_err());
    }
}
