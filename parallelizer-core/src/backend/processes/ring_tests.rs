//! Tests of the shared-memory rings (`ring`).

use super::*;

fn read_all(r: &Rings, from: usize, want: usize) -> Vec<u8> {
    let mut out = vec![0u8; want];
    let mut got = 0;
    while got < want {
        let (head, _) = r.published(from);
        let n = r.read(from, head, as_uninit(&mut out[got..])).unwrap();
        assert!(n > 0, "ring ran dry at {got} of {want}");
        got += n;
    }
    out
}

#[test]
fn capacity_shrinks_with_pairs_and_stays_a_power_of_two() {
    assert_eq!(capacity(2, false), MAX_CAP);
    assert_eq!(capacity(4, true), CROWDED_MAX_CAP);
    assert_eq!(capacity(64, false), MIN_CAP);
    for n in 1..100 {
        for crowded in [false, true] {
            let cap = capacity(n, crowded);
            assert!(cap.is_power_of_two(), "{n}");
            // A worker finds the capacity main chose from the size.
            assert_eq!(capacity_of(n, size(n, cap) as u64), Some(cap), "{n}");
        }
    }
    assert_eq!(capacity_of(4, size(4, MAX_CAP) as u64 + 1), None);
    assert_eq!(capacity_of(4, size(4, 3 << 20) as u64), None);
}

#[test]
fn a_worker_maps_the_rings_of_a_crowded_pool_at_their_capacity() {
    let a = Rings::create(4, true).unwrap();
    let memfd = a.memfd.try_clone().unwrap();
    let bells = a.bells.iter().map(|b| b.try_clone().unwrap()).collect();
    let b = Rings::open(1, 4, memfd, bells).unwrap();
    assert_eq!((a.cap(), b.cap()), (4 << 20, 4 << 20));
    let big = vec![7u8; 3 << 20];
    // More than a 1 MiB ring holds, written before the reader reads.
    assert_eq!(a.write(1, &[&big], 0), big.len());
    assert_eq!(read_all(&b, 0, big.len()), big);
}

#[test]
fn bytes_wrap_around_the_end_in_order() {
    let (a, b) = pair(2);
    let cap = a.cap();
    // Fill most of the ring, read all but a little (a ring that is not
    // empty does not rewind), then write across the end.
    let first: Vec<u8> = (0..cap - 100).map(|i| i as u8).collect();
    assert_eq!(a.write(1, &[&first], 0), first.len());
    assert!(!a.drained(1) && b.pending(0));
    assert_eq!(read_all(&b, 0, first.len() - 1), first[..first.len() - 1]);
    let second: Vec<u8> = (0..1000).map(|i| (i * 7) as u8).collect();
    assert_eq!(a.write(1, &[&second[..10], &second[10..]], 0), 1000);
    assert_eq!(a.head(0, 1).load(Ordering::Relaxed), cap as u64 + 900);
    assert_eq!(read_all(&b, 0, 1001)[1..], second);
    assert!(a.drained(1));
    // A full ring takes nothing more; what is read makes room.
    let big = vec![9u8; cap + 5];
    assert_eq!(a.write(1, &[&big], 0), cap);
    assert_eq!(a.write(1, &[&big], cap), 0);
    assert_eq!(read_all(&b, 0, 5), [9; 5]);
    assert_eq!(a.write(1, &[&big], cap), 5);
    assert_eq!(read_all(&b, 0, cap), vec![9; cap]);
    assert!(!b.pending(0));
}

#[test]
fn an_empty_ring_rewinds_to_its_first_byte() {
    let (a, b) = pair(2);
    let (cap, window) = (a.cap() as u64, a.window(1));
    // Short of the window: no rewind.
    let small = vec![1u8; window - 1];
    assert_eq!(a.write(1, &[&small], 0), small.len());
    assert_eq!(read_all(&b, 0, small.len()), small);
    assert_eq!(a.write(1, &[b"ab"], 0), 2);
    assert_eq!(read_all(&b, 0, 2), b"ab");
    // Past the window and empty: the next bytes go at the ring's start,
    // in order, and the reader skips the gap.
    let frame: Vec<u8> = (0..window).map(|i| (i * 3) as u8).collect();
    assert_eq!(a.write(1, &[&frame], 0), frame.len());
    assert_eq!(a.head(0, 1).load(Ordering::Relaxed), cap + window as u64);
    assert_eq!(read_all(&b, 0, frame.len()), frame);
    assert!(a.drained(1) && !b.pending(0));
    // Empty at the window: "x" rewinds again; "y" finds it unread and
    // follows it.
    assert_eq!(a.write(1, &[b"x"], 0), 1);
    assert_eq!(a.write(1, &[b"y"], 0), 1);
    assert_eq!(a.head(0, 1).load(Ordering::Relaxed), 2 * cap + 2);
    assert_eq!(read_all(&b, 0, 2), b"xy");
    // A resume that is not a ring's start, or a whole ring or more
    // ahead of the tail, is a corrupt stream.
    let mut buf = [0u8; 8];
    for resume in [2 * cap + 100, 4 * cap] {
        a.resume(0, 1).store(resume, Ordering::Relaxed);
        a.head(0, 1).store(resume + 1, Ordering::Release);
        let (head, _) = b.published(0);
        assert!(b.read(0, head, as_uninit(&mut buf)).is_err(), "{resume}");
    }
}

#[test]
fn the_rewind_window_grows_with_the_traffic_to_a_quarter_of_the_ring() {
    let (a, b) = pair(2);
    let cap = a.cap();
    assert!(cap / 4 > WARM, "rings of {cap} bytes");
    assert_eq!(a.window(1), WARM);
    assert_eq!(b.window(0), WARM, "each direction its own");
    // Frames of 8 KiB, each read before the next: rewound at the window,
    // which grows by a sixteenth of what went through.
    let frame: Vec<u8> = (0..8192).map(|i| (i * 5) as u8).collect();
    let mut furthest = 0;
    for sent in 1..=(GROWTH as usize * cap / 4) / frame.len() {
        assert_eq!(a.write(1, &[&frame], 0), frame.len());
        furthest = furthest.max(a.head(0, 1).load(Ordering::Relaxed) % cap as u64);
        assert_eq!(read_all(&b, 0, frame.len()), frame);
        let grown = (sent * frame.len() / GROWTH as usize).clamp(WARM, cap / 4);
        assert_eq!(a.window(1), grown, "after {sent} frames");
    }
    assert_eq!(a.window(1), cap / 4);
    // The stream never went further than the window plus one frame.
    assert!(furthest <= (cap / 4 + frame.len()) as u64, "{furthest}");
    assert_eq!(b.window(0), WARM);
}

#[test]
fn an_empty_ring_does_not_rewind_for_more_than_lies_behind_its_head() {
    let (a, b) = pair(2);
    let (cap, window) = (a.cap() as u64, a.window(1));
    let frame = vec![3u8; window + 1];
    assert_eq!(a.write(1, &[&frame], 0), frame.len());
    assert_eq!(read_all(&b, 0, frame.len()), frame);
    // Empty past the window; a rewind would leave `window + 1` bytes of
    // room until the reader reads again. Not rewound, the whole ring is.
    let long: Vec<u8> = (0..cap as usize).map(|i| (i * 7) as u8).collect();
    assert_eq!(a.write(1, &[&long], 0), long.len());
    assert_eq!(
        a.head(0, 1).load(Ordering::Relaxed),
        window as u64 + 1 + cap
    );
    assert_eq!(read_all(&b, 0, long.len()), long);
}

#[test]
fn indices_out_of_range_are_a_corrupt_stream() {
    let (a, b) = pair(2);
    a.head(0, 1).store(a.cap() as u64 + 1, Ordering::Release);
    let mut buf = [0u8; 8];
    let (head, _) = b.published(0);
    assert!(b.read(0, head, as_uninit(&mut buf)).is_err());
    // Behind the tail is out of range too.
    a.tail(0, 1).store(10, Ordering::Release);
    a.head(0, 1).store(5, Ordering::Release);
    assert!(b.read(0, 5, as_uninit(&mut buf)).is_err());
}

#[test]
fn a_sleeper_is_woken_once_and_socket_frames_are_counted() {
    let (a, b) = pair(3);
    b.sleep();
    assert_eq!(a.write(1, &[b"x"], 0), 1);
    let mut n = [0u8; 8];
    assert_eq!(rustix::io::read(b.bell(), &mut n).unwrap(), 8);
    // Not asleep: no wake-up.
    b.awake();
    assert_eq!(a.write(1, &[b"y"], 0), 1);
    assert!(rustix::io::read(b.bell(), &mut n).is_err());
    a.sent_on_socket(1);
    assert_eq!(b.published(0), (2, 1));
    // A worker refuses a memfd of the wrong size.
    let memfd = a.memfd.try_clone().unwrap();
    let bells = a.bells.iter().map(|b| b.try_clone().unwrap()).collect();
    assert!(Rings::open(1, 4, memfd, bells).is_err());
}
