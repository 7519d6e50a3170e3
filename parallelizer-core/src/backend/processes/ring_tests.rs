//! Endpoints joined by sockets and shared-memory rings, in this process:
//! frames in order, frames larger than a ring, wrap-around, and a peer's
//! death while a rank waits on its rings.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::endpoint::{Endpoint, Event};
use super::frame::{DEFAULT_MAX_FRAME, Frame, Header};
use super::ring;
use crate::link::Packet;
use crate::msg::{Encoding, Msg};
use crate::op::{Op, Tag};

/// Ranks 0 and 1 joined by a socketpair and rings.
fn pair() -> (Endpoint, Endpoint) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let (ra, rb) = ring::pair(2);
    (
        Endpoint::new(0, vec![None, Some(a)], DEFAULT_MAX_FRAME).with_rings(Some(ra)),
        Endpoint::new(1, vec![Some(b), None], DEFAULT_MAX_FRAME).with_rings(Some(rb)),
    )
}

/// The header of a data packet with sequence number `seq`, its body `len`
/// bytes.
fn data(seq: u64, len: usize) -> Header {
    let p = Packet::data(1, Tag::new(Op::Send, seq), Msg::new(()));
    Header::packet(&p, 0, Encoding::Pod, len as u64)
}

fn send(ep: &mut Endpoint, to: usize, seq: u64, body: &[u8]) {
    let until = Some(Instant::now() + Duration::from_secs(10));
    ep.write_frame(to, data(seq, body.len()), b"", &[body], None, until)
        .unwrap();
}

fn next_frame(ep: &mut Endpoint) -> Frame {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match ep.next_event() {
            Some(Event::Frame(_, f)) => return f,
            Some(Event::Closed(r)) => panic!("closed: {}", ep.closed(r).unwrap()),
            None => assert!(!ep.pump(Some(until), None).unwrap(), "timed out"),
        }
    }
}

fn seq_of(f: &Frame) -> u64 {
    let h = f.header().encode();
    u64::from_le_bytes(h[8..16].try_into().unwrap())
}

#[test]
fn many_small_frames_in_order_with_wrap_around() {
    let (mut a, mut b) = pair();
    let n = 20_000u64; // ~1.2 MB through a 1 MiB ring: it wraps
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            send(&mut b, 0, i, &i.to_le_bytes());
        }
        b
    });
    for i in 0..n {
        let f = next_frame(&mut a);
        assert_eq!(seq_of(&f), i);
        assert_eq!(f.bytes(), i.to_le_bytes());
    }
    writer.join().unwrap();
}

#[test]
fn frames_larger_than_the_ring_stream_through_it() {
    let (mut a, mut b) = pair();
    let big: Vec<u8> = (0..5 * (1 << 20) + 3).map(|i| (i % 253) as u8).collect();
    let expect = big.clone();
    let writer = std::thread::spawn(move || {
        send(&mut b, 0, 1, &big);
        send(&mut b, 0, 2, b"after");
        b
    });
    let f = next_frame(&mut a);
    assert_eq!(seq_of(&f), 1);
    assert_eq!(f.bytes(), expect);
    assert_eq!(next_frame(&mut a).bytes(), b"after");
    writer.join().unwrap();
}

#[test]
fn a_frame_with_a_descriptor_keeps_its_place_between_ring_frames() {
    let (mut a, mut b) = pair();
    let fd = super::shm::create(&[5; 64]).unwrap();
    let writer = std::thread::spawn(move || {
        send(&mut b, 0, 1, b"before");
        let h = data(2, 64).shared();
        let until = Some(Instant::now() + Duration::from_secs(10));
        b.write_frame(0, h, b"", &[], Some(fd.as_fd()), until)
            .unwrap();
        send(&mut b, 0, 3, b"after");
        b
    });
    let seqs: Vec<u64> = (0..3).map(|_| seq_of(&next_frame(&mut a))).collect();
    assert_eq!(seqs, [1, 2, 3]);
    writer.join().unwrap();
}

#[test]
fn a_peer_that_dies_while_a_rank_waits_is_closed_promptly() {
    // A reader waiting on its rings sees the writer's death (EOF on the
    // socket), after the frames the writer published first.
    let (mut a, b) = pair();
    let writer = std::thread::spawn(move || {
        let mut b = b;
        send(&mut b, 0, 1, b"last words");
        std::thread::sleep(Duration::from_millis(200));
        drop(b);
    });
    assert_eq!(next_frame(&mut a).bytes(), b"last words");
    let t = Instant::now();
    let until = Some(t + Duration::from_secs(10));
    let closed = loop {
        match a.next_event() {
            Some(Event::Closed(r)) => break r,
            Some(other) => panic!("{other:?}"),
            None => assert!(!a.pump(until, None).unwrap(), "timed out"),
        }
    };
    assert_eq!(closed, 1);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    writer.join().unwrap();
    // A writer blocked on a full ring whose reader dies gets an error, not
    // a hang.
    let (a, mut b) = pair();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(a);
    });
    let big = vec![0u8; 4 << 20];
    let until = Some(Instant::now() + Duration::from_secs(10));
    let err = b.write_frame(0, data(1, big.len()), b"", &[&big], None, until);
    assert!(err.is_err(), "a write to a dead reader succeeded");
    assert!(b.is_closed(0));
    reader.join().unwrap();
}

#[test]
fn ping_pong_through_rings() {
    let (mut a, mut b) = pair();
    let n = 2000;
    let echo = std::thread::spawn(move || {
        for i in 0..n {
            let f = next_frame(&mut b);
            assert_eq!(seq_of(&f), i);
            send(&mut b, 0, i, &f.bytes());
        }
    });
    let t = Instant::now();
    for i in 0..n {
        send(&mut a, 1, i, &[7; 8]);
        assert_eq!(next_frame(&mut a).bytes(), [7; 8]);
    }
    eprintln!("one way: {:?}", t.elapsed() / (2 * n as u32));
    echo.join().unwrap();
}
