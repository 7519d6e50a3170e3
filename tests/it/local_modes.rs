//! The shared SPMD suite (`tests/common`) on `serial` and on `threads` with
//! 1 to 4 ranks, plus what only in-process modes offer: closures anywhere.

use crate::common::*;
use parallelizer::prelude::*;

fn local(n: usize) -> std::sync::Arc<dyn Parallelizer> {
    if n == 0 {
        from_config("serial")
    } else {
        from_config(format!("threads:{n}"))
    }
    .unwrap()
}

// 0 stands for serial.
spmd_suite!(local, [0, 1, 2, 3, 4], table_up_to = 16);
data_suite!(local, [0, 1, 2, 3, 4]);

#[test]
fn pool_style_map_reduce_equals_rayon_style_fold() {
    for par in modes() {
        let sum = par
            .map_reduce(
                |x: u64| x * x,
                Some((1..=1000).collect()),
                parallelizer::Reduce::Sum,
            )
            .unwrap();
        assert_eq!(sum, Some((1..=1000u64).map(|x| x * x).sum()));
        let words = par
            .map_reduce(
                |x: u32| format!("{x};"),
                Some((0..30).collect()),
                |a: String, b: String| a + &b,
            )
            .unwrap();
        assert_eq!(
            words.unwrap(),
            (0..30).map(|x| format!("{x};")).collect::<String>()
        );
        // Chunks finish out of order (some items are slow): the values
        // are still combined in input order.
        let slow_words = par
            .map_reduce(
                |x: u32| {
                    if x.is_multiple_of(97) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    format!("{x};")
                },
                Some((0..2000).collect()),
                |a: String, b: String| a + &b,
            )
            .unwrap();
        assert_eq!(
            slow_words.unwrap(),
            (0..2000).map(|x| format!("{x};")).collect::<String>()
        );
        let none = par
            .map_reduce(|x: f64| x, Some(Vec::new()), parallelizer::Reduce::Max)
            .unwrap();
        assert_eq!(none, None);
    }
}

// Groups, apply, main-only arguments, is_active (threads; serial below).
parity_suite!(local);

/// On serial (one rank, always in a region) a subgroup and a split are
/// one-rank groups; `apply`, `run_with` and `is_active` work as elsewhere.
#[test]
fn parity_on_serial() {
    let par = local(0);
    let g = par.subgroup(&[0]).unwrap();
    assert_eq!(g.run(group_view, 4).unwrap(), Some(expected_view(&[0], 4)));
    assert!(matches!(
        par.subgroup(&[0, 1]),
        Err(Error::InvalidRank { rank: 1, nprocs: 1 })
    ));
    assert_eq!(par.run(split_parity, ()).unwrap(), Some(expected_split(1)));
    assert!(par.apply(chunk_lens, 3).is_err());
    {
        let _entered = par.enter().unwrap();
        assert_eq!(par.apply(chunk_lens, 3).unwrap(), Some(vec![3]));
        assert_eq!(par.apply(apply_on_ranks, 5).unwrap(), Some(vec![0]));
    }
    assert_eq!(
        par.run_with(with_main_args, 2, vec![1, 2, 3]).unwrap(),
        Some((12, vec![true]))
    );
    assert_eq!(par.run(active_everywhere, ()).unwrap(), Some(vec![true]));
}

#[test]
fn pool_style_closures_outside_a_region() {
    for par in modes() {
        let with = par
            .map_with(|x: i64, k: &i64| x + k, Some(vec![1, 2, 3]), Some(10))
            .unwrap();
        assert_eq!(with.unwrap(), [11, 12, 13]);
        let star = par.starmap(
            |a: i64, b: String| format!("{b}{a}"),
            Some(vec![(1, "x".into())]),
        );
        assert_eq!(star.unwrap().unwrap(), ["x1"]);
        let chunks = par
            .map_chunks(|xs: Vec<u8>| vec![xs.len()], Some(vec![0; 4]))
            .unwrap();
        assert_eq!(chunks.unwrap().iter().sum::<usize>(), 4);
    }
}

/// T7 MiscProblems (a): nine arrays over nine ranks, one each.
#[test]
fn t7_nine_ranks() {
    assert_eq!(
        local(9).run(simple_scatter_1, ()).unwrap(),
        Some(vec![1; 9])
    );
}
