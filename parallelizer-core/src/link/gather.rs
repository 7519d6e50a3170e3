//! Main's end of a gather of plain data ([`NativePod::gather_pod`] and
//! [`NativePod::gather_pod_parts`] of a [`LinkRank`]): every worker's part
//! arrives as a packet of the call — a loan (read here, or written here by
//! its lender: `push.rs`) or the bytes themselves — and lands either back
//! to back in one buffer or each in a buffer of its own ([`Dest`]).
//!
//! [`NativePod::gather_pod`]: crate::native::NativePod::gather_pod
//! [`NativePod::gather_pod_parts`]: crate::native::NativePod::gather_pod_parts

use crate::error::{Error, Result};
use crate::native::check_parts;
use crate::op::{Op, Tag};
use crate::parallelizer::Parallelizer;
use crate::plain::{PlainBuf, PodType};

use super::part::Part;
use super::push;
use super::rank::LinkRank;
use super::remote::{CopyError, Refused};
use super::spread::Spread;
use super::{Transport, missing};

/// Where main's end of a gather puts the parts.
pub(super) enum Dest<'a, 'b> {
    /// One buffer: main's own part first when `own`, then every worker's,
    /// back to back.
    One {
        recv: &'a mut (dyn PlainBuf + 'b),
        own: bool,
    },
    /// One buffer per worker's part (main's own stays where it is).
    Each(&'a mut [&'b mut dyn PlainBuf]),
}

/// Main's own place in a gather's buffers (if it has one) and each
/// worker's part's, fitted.
type Places<'a> = (Option<&'a mut [u8]>, Vec<&'a mut [u8]>);

impl Dest<'_, '_> {
    /// Whether every buffer could be given up ([`PlainBuf::can_abandon`]).
    fn can_abandon(&self) -> bool {
        match self {
            Dest::One { recv, .. } => recv.can_abandon(),
            Dest::Each(bufs) => bufs.iter().all(|b| b.can_abandon()),
        }
    }

    /// Gives up every buffer ([`PlainBuf::abandon`]).
    fn abandon(&mut self) {
        match self {
            Dest::One { recv, .. } => recv.abandon(),
            Dest::Each(bufs) => bufs.iter_mut().for_each(|b| b.abandon()),
        }
    }

    /// The buffers fitted to `counts` (main's first): main's own place (if
    /// it has one) and each worker's part's.
    fn fit(&mut self, ty: PodType, counts: &[usize]) -> Result<Places<'_>> {
        match self {
            Dest::One { recv, own } => {
                let skip = usize::from(!*own);
                let out = recv.fit(counts[skip..].iter().sum())?;
                let (mine, mut rest) = match own {
                    true => {
                        let (mine, rest) = out.split_at_mut(ty.bytes(counts[0]));
                        (Some(mine), rest)
                    }
                    false => (None, out),
                };
                let mut parts = Vec::with_capacity(counts.len() - 1);
                for &count in &counts[1..] {
                    let (part, after) = std::mem::take(&mut rest).split_at_mut(ty.bytes(count));
                    parts.push(part);
                    rest = after;
                }
                Ok((mine, parts))
            }
            Dest::Each(bufs) => {
                check_parts(bufs.len(), counts.len() - 1)?;
                let parts = bufs.iter_mut().zip(&counts[1..]);
                let parts = parts
                    .map(|(b, &count)| b.fit(count))
                    .collect::<Result<_>>()?;
                Ok((None, parts))
            }
        }
    }

    /// Whether the caller's buffer already holds room for `bytes` (memory
    /// that is there, which a copy may spread over several threads; a
    /// buffer that must grow gets fresh memory, see `spread.rs`).
    fn holds(&mut self, bytes: usize) -> bool {
        match self {
            Dest::One { recv, .. } => recv.bytes().len() >= bytes,
            Dest::Each(_) => false,
        }
    }

    /// Worker `i + 1`'s place, once fitted.
    fn part(&mut self, ty: PodType, counts: &[usize], i: usize) -> &mut [u8] {
        match self {
            Dest::One { recv, own } => {
                let skip = usize::from(!*own);
                let at = ty.bytes(counts[skip..=i].iter().sum());
                &mut recv.bytes()[at..at + ty.bytes(counts[i + 1])]
            }
            Dest::Each(bufs) => bufs[i].bytes(),
        }
    }
}

impl<T: Transport> LinkRank<T> {
    /// A gather of plain data: a worker sends its part to main (lent where
    /// buffers are); main puts every part where `dest` says (a worker
    /// passes `None`) and returns every rank's count.
    pub(super) fn gather_to(
        &self,
        ty: PodType,
        send: &[u8],
        dest: Option<Dest<'_, '_>>,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        if !self.on_main() {
            // A worker's part is a send to main, lent where buffers are.
            return self.send_lent(ty, send, 0, tag).map(|()| Vec::new());
        }
        let mut parts = Vec::with_capacity(self.nprocs());
        for r in 1..self.nprocs() {
            match self.recv_raw(r, tag).and_then(Part::of) {
                Ok(part) => parts.push(part),
                Err(e) => {
                    let _ = self.ack_lent(&parts, &[], tag);
                    return Err(e);
                }
            }
        }
        let mut dest = dest;
        let mut refused = Vec::new();
        let copied = match dest.as_mut() {
            Some(dest) => self.copy_parts(ty, send, &parts, dest, &mut refused, tag),
            None => Err(missing(Op::Gather, "buffer")),
        };
        let acked = self.ack_lent(&parts, &refused, tag);
        // Ranks whose loans could not be read send their bytes instead.
        let mut fetched = Ok(());
        for (i, why) in refused {
            let r = i + 1;
            let msg = self
                .send_msg(why.into_msg(), r, tag)
                .and_then(|()| self.recv_raw(r, tag));
            let placed = msg.and_then(|msg| {
                let bytes = msg.plain_bytes(ty)?;
                if let (Ok(counts), Some(dest)) = (&copied, dest.as_mut()) {
                    dest.part(ty, counts, i).copy_from_slice(bytes);
                }
                Ok(())
            });
            fetched = fetched.and(placed);
        }
        let counts = copied?;
        acked.and(fetched).map(|()| counts)
    }

    /// Acknowledges every loan among the parts of a gather (rank `i + 1`
    /// sent part `i`) but those `refused`; the first failure is returned,
    /// after trying them all.
    fn ack_lent(&self, parts: &[Part], refused: &[(usize, Refused)], tag: Tag) -> Result<()> {
        let mut first = Ok(());
        for (i, part) in parts.iter().enumerate() {
            if part.is_loan() && !refused.iter().any(|(j, _)| *j == i) {
                let acked = self.ack(i + 1, tag);
                if first.is_ok() {
                    first = acked;
                }
            }
        }
        first
    }

    /// Every part's count (main's first), and the parts in `dest`, with
    /// main's own where `dest` has a place for it. A loan across processes
    /// the system forbids to read is left out, with its part's index, in
    /// `refused`. Lenders that offer it write their large parts themselves
    /// while main copies its own (`push.rs`); if one never answers, `dest`
    /// is abandoned.
    fn copy_parts(
        &self,
        ty: PodType,
        send: &[u8],
        parts: &[Part],
        dest: &mut Dest<'_, '_>,
        refused: &mut Vec<(usize, Refused)>,
        tag: Tag,
    ) -> Result<Vec<usize>> {
        let mut counts = vec![ty.elements(send.len())];
        for (i, part) in parts.iter().enumerate() {
            let len = match part {
                Part::Lent(lent) => lent.check(ty).map(|()| lent.len),
                Part::Remote(note) => note.check(ty).map(|()| note.len()),
                Part::Msg(msg) => msg.plain_bytes(ty).map(<[u8]>::len),
            }?;
            if !ty.whole(len) {
                return Err(Error::Protocol(format!(
                    "{}: rank {} sent {len} bytes, not a whole number of {}",
                    Op::Gather,
                    i + 1,
                    ty.name
                )));
            }
            counts.push(ty.elements(len));
        }
        // Where every part is a loan in this process (threads), the lenders
        // wait while main copies: its copies spread over the cores they
        // leave free, into a buffer that holds them already (1e7 f64 on
        // `threads:2`: 4.3-5.8 ms against 5.6-8.5 ms on one thread).
        let all_lent = parts.iter().all(|p| matches!(p, Part::Lent(_)));
        let spread = if all_lent && dest.holds(ty.bytes(counts.iter().sum())) {
            Spread::among(1)
        } else {
            Spread::ONE
        };
        let can_abandon = dest.can_abandon();
        let (mine, mut dsts) = dest.fit(ty, &counts)?;
        // A lender asked writes its whole part while main copies its own,
        // else all but the first part (`push::split`) while main copies that.
        let copies_own = mine.as_ref().is_some_and(|m| !m.is_empty());
        let asked: Vec<Option<usize>> = (parts.iter().zip(&dsts).enumerate())
            .map(|(i, (part, dst))| match part {
                Part::Remote(note) if push::asks(note, can_abandon) => {
                    let from = match copies_own {
                        true => Some(0),
                        false => push::split(dst.as_ptr() as usize, dst.len()),
                    };
                    from.filter(|&f| self.ask_push(note, f, &dst[f..], i + 1, tag).is_ok())
                }
                _ => None,
            })
            .collect();
        if let Some(mine) = mine {
            spread.copy_from(mine, send);
        }
        // Every part is seen to, and every lender asked has answered, before
        // an error returns: only then is nobody writing into `dest`.
        let (mut first, mut lost) = (Ok(()), None);
        for (i, (part, dst)) in parts.iter().zip(dsts.iter_mut()).enumerate() {
            let copied = match part {
                Part::Lent(lent) => (lent.loan).copy_to(lent.offset, dst, spread),
                Part::Remote(note) => {
                    let copied = match asked[i] {
                        Some(from) => self.finish_pushed(note, from, dst, i + 1, tag),
                        None => Ok(note.copy_to(dst, Spread::ONE)),
                    };
                    match copied {
                        Err(e) => {
                            lost = Some(e);
                            Ok(())
                        }
                        Ok(Err(CopyError::Refused(why))) => {
                            refused.push((i, why));
                            Ok(())
                        }
                        Ok(copied) => copied.map_err(Error::from),
                    }
                }
                Part::Msg(msg) => msg.plain_bytes(ty).map(|bytes| dst.copy_from_slice(bytes)),
            };
            first = first.and(copied);
        }
        if let Some(e) = lost {
            dest.abandon();
            return Err(e);
        }
        first.map(|()| counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty() -> PodType {
        PodType::of::<f64>()
    }

    fn filled(dest: &mut Dest<'_, '_>, counts: &[usize]) -> Result<()> {
        let (mine, parts) = dest.fit(ty(), counts)?;
        if let Some(mine) = mine {
            mine.fill(9);
        }
        for (i, part) in parts.into_iter().enumerate() {
            assert_eq!(part.len(), ty().bytes(counts[i + 1]));
            part.fill(i as u8 + 1);
        }
        Ok(())
    }

    #[test]
    fn one_buffer_holds_the_parts_back_to_back_after_mains_own() {
        let counts = [2, 1, 0, 3];
        for own in [true, false] {
            let mut all: Vec<f64> = Vec::new();
            let mut dest = Dest::One {
                recv: &mut all,
                own,
            };
            filled(&mut dest, &counts).unwrap();
            // `part` finds each where `fit` put it.
            for i in 0..3 {
                let part = dest.part(ty(), &counts, i);
                assert!(
                    part.iter().all(|&b| b == i as u8 + 1),
                    "own {own}, part {i}"
                );
                assert_eq!(part.len(), ty().bytes(counts[i + 1]));
            }
            let skip = usize::from(!own);
            let own_bytes = if own { ty().bytes(counts[0]) } else { 0 };
            assert!(
                bytemuck::cast_slice::<f64, u8>(&all)[..own_bytes]
                    .iter()
                    .all(|&b| b == 9)
            );
            assert_eq!(all.len(), counts[skip..].iter().sum::<usize>());
        }
    }

    #[test]
    fn each_part_gets_a_buffer_of_its_own() {
        let counts = [2, 1, 0, 3];
        let mut bufs: Vec<Vec<f64>> = vec![Vec::new(); 3];
        let mut refs: Vec<&mut dyn PlainBuf> =
            bufs.iter_mut().map(|b| b as &mut dyn PlainBuf).collect();
        let mut dest = Dest::Each(&mut refs);
        assert!(dest.can_abandon());
        filled(&mut dest, &counts).unwrap();
        assert!(dest.part(ty(), &counts, 2).iter().all(|&b| b == 3));
        let lens: Vec<usize> = bufs.iter().map(Vec::len).collect();
        assert_eq!(lens, [1, 0, 3]);
    }

    #[test]
    fn a_wrong_number_of_buffers_is_named() {
        let mut bufs: Vec<Vec<f64>> = vec![Vec::new(); 2];
        let mut refs: Vec<&mut dyn PlainBuf> =
            bufs.iter_mut().map(|b| b as &mut dyn PlainBuf).collect();
        let err = Dest::Each(&mut refs).fit(ty(), &[1, 1, 1, 1]).unwrap_err();
        assert!(err.to_string().contains("2 buffers for 3 workers"), "{err}");
    }
}
