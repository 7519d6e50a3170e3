//! How a collective larger than one MPI call can carry is split into
//! rounds. MPI counts and displacements are C `int`s, so one call moves at
//! most `i32::MAX` elements; the backend caps every call at
//! `max_message_bytes` (1 GiB by default) and sends the rest in further
//! rounds, transparently.
//!
//! The chunks of a scatter-v or gather-v lie back to back in main's buffer,
//! in rank order. Round `k` moves the window `[k * limit, (k + 1) * limit)`
//! of that buffer: each rank's share of the window is its count in the
//! round, and its displacement is relative to the window's start, so both
//! stay below `limit`. Every rank computes the same plan from the counts.

use std::ops::Range;

/// One call of a split scatter-v or gather-v.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Round {
    /// Where the window starts in main's buffer, in elements.
    pub base: usize,
    /// Elements of each rank in this window.
    pub counts: Vec<usize>,
    /// Where each rank's elements start, relative to `base`.
    pub displs: Vec<usize>,
}

impl Round {
    /// The part of `rank`'s own chunk that this round moves, as a range of
    /// that chunk (the chunk starts at `chunk_start` in main's buffer).
    pub fn own(&self, rank: usize, chunk_start: usize) -> Range<usize> {
        if self.counts[rank] == 0 {
            return 0..0;
        }
        let start = self.base + self.displs[rank] - chunk_start;
        start..start + self.counts[rank]
    }
}

/// The rounds that move chunks of `counts` elements with at most `limit`
/// elements per call. No rounds when there is nothing to move.
pub(crate) fn rounds(counts: &[usize], limit: usize) -> Vec<Round> {
    let limit = limit.max(1);
    let total: usize = counts.iter().sum();
    let starts = starts(counts);
    (0..total.div_ceil(limit))
        .map(|k| {
            let (lo, hi) = (k * limit, ((k + 1) * limit).min(total));
            let mut round = Round {
                base: lo,
                counts: vec![0; counts.len()],
                displs: vec![0; counts.len()],
            };
            for (rank, (&start, &count)) in starts.iter().zip(counts).enumerate() {
                let (a, b) = (start.max(lo), (start + count).min(hi));
                if a < b {
                    round.counts[rank] = b - a;
                    round.displs[rank] = a - lo;
                } else {
                    // An empty share still needs a valid displacement.
                    round.displs[rank] = start.clamp(lo, hi) - lo;
                }
            }
            round
        })
        .collect()
}

/// Where each rank's chunk starts in main's buffer.
pub(crate) fn starts(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0, |acc, &c| {
            let s = *acc;
            *acc += c;
            Some(s)
        })
        .collect()
}

/// The pieces of a buffer of `len` elements broadcast in calls of at most
/// `limit` elements.
pub(crate) fn pieces(len: usize, limit: usize) -> impl Iterator<Item = Range<usize>> {
    let limit = limit.max(1);
    (0..len.div_ceil(limit)).map(move |k| k * limit..((k + 1) * limit).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::chunk_sizes;

    /// What a scatter-v through `rounds` delivers, done with slices.
    fn simulate_scatter(data: &[u32], counts: &[usize], limit: usize) -> Vec<Vec<u32>> {
        let starts = starts(counts);
        let mut out: Vec<Vec<u32>> = counts.iter().map(|&c| vec![u32::MAX; c]).collect();
        for round in rounds(counts, limit) {
            assert!(round.counts.iter().sum::<usize>() <= limit);
            let window = &data[round.base..];
            for rank in 0..counts.len() {
                assert!(round.displs[rank] <= limit, "{round:?}");
                let src = &window[round.displs[rank]..round.displs[rank] + round.counts[rank]];
                out[rank][round.own(rank, starts[rank])].copy_from_slice(src);
            }
        }
        out
    }

    /// What a gather-v through `rounds` assembles on main.
    fn simulate_gather(chunks: &[Vec<u32>], limit: usize) -> Vec<u32> {
        let counts: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let starts = starts(&counts);
        let mut all = vec![u32::MAX; counts.iter().sum()];
        for round in rounds(&counts, limit) {
            for (rank, chunk) in chunks.iter().enumerate() {
                let at = round.base + round.displs[rank];
                all[at..at + round.counts[rank]]
                    .copy_from_slice(&chunk[round.own(rank, starts[rank])]);
            }
        }
        all
    }

    #[test]
    fn one_round_when_it_fits() {
        let r = rounds(&[3, 3, 2, 2], 10);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].counts, [3, 3, 2, 2]);
        assert_eq!(r[0].displs, [0, 3, 6, 8]);
        assert!(rounds(&[0, 0, 0], 4).is_empty());
    }

    #[test]
    fn windows_of_the_limit() {
        let r = rounds(&[3, 3, 2, 2], 4);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].counts, [3, 1, 0, 0]);
        assert_eq!(r[1].counts, [0, 2, 2, 0]);
        assert_eq!(r[1].displs, [0, 0, 2, 4]);
        assert_eq!(r[2].counts, [0, 0, 0, 2]);
    }

    #[test]
    fn split_scatter_and_gather_move_every_element_once() {
        for n in [0usize, 1, 2, 7, 10, 33, 100] {
            for nprocs in 1..=5 {
                for limit in [1usize, 2, 3, 5, 8, 1000] {
                    let data: Vec<u32> = (0..n as u32).collect();
                    let counts = chunk_sizes(n, nprocs);
                    let chunks = simulate_scatter(&data, &counts, limit);
                    let expected = crate::split::split(data.clone(), nprocs);
                    assert_eq!(chunks, expected, "n={n} nprocs={nprocs} limit={limit}");
                    assert_eq!(simulate_gather(&chunks, limit), data);
                }
            }
        }
        // Uneven counts that no scatter made (gather of ragged results).
        let ragged = vec![vec![1, 2, 3, 4, 5], vec![], vec![6], vec![7, 8, 9]];
        for limit in 1..10 {
            assert_eq!(simulate_gather(&ragged, limit), (1..=9).collect::<Vec<_>>());
        }
    }

    #[test]
    fn broadcast_pieces_cover_the_buffer() {
        assert_eq!(pieces(0, 4).count(), 0);
        assert_eq!(pieces(10, 4).collect::<Vec<_>>(), [0..4, 4..8, 8..10]);
        assert_eq!(pieces(8, 4).collect::<Vec<_>>(), [0..4, 4..8]);
    }
}
