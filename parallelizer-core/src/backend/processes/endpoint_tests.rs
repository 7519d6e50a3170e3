//! The endpoint's tests, in this process: endpoints joined by sockets
//! only, then by sockets and shared-memory rings.

/// Main's word that region 1's deadline passed (`link::Kind::Expired`),
/// as a frame: what halts a blocked send.
fn expired() -> super::frame::Header {
    let p = crate::link::Packet::control(crate::link::Kind::Expired, 1, ());
    super::frame::Header::packet(&p, 0, crate::msg::Encoding::Serde, 0)
}

/// Writes 64 MiB (`header`'s frame) from `b` to rank 0, which never reads,
/// halting on region 1's `Expired` (deadline 10 s): it halts, well before.
fn assert_halts(b: &mut super::endpoint::Endpoint, header: super::frame::Header) {
    use super::endpoint::{Until, WriteError};
    use std::time::{Duration, Instant};
    let big = vec![0u8; 64 << 20];
    let t = Instant::now();
    let until = Until {
        deadline: Some(t + Duration::from_secs(10)),
        halt: Some(1),
    };
    let err = b
        .write_frame(0, header, b"", &[&big], &[], until)
        .unwrap_err();
    let expired = matches!(err, WriteError::Halted(0, super::frame::Halt::Expired));
    assert!(expired, "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// Sockets only: frames with and without descriptors, timeouts, hostile
/// and truncated streams.
mod sockets {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    use super::super::endpoint::{Endpoint, Event, Until, WriteError};
    use super::super::frame::{BadFrame, Frame, Header};
    use crate::link::Packet;
    use crate::msg::{Encoding, Msg};
    use crate::op::{Op, Tag};

    /// Two endpoints (ranks 0 and 1) joined by a socketpair, in this process.
    fn pair() -> (Endpoint, Endpoint) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let max = super::super::frame::DEFAULT_MAX_FRAME;
        (
            Endpoint::new(0, vec![None, Some(a)], max),
            Endpoint::new(1, vec![Some(b), None], max),
        )
    }

    /// A data packet's header, its body `len` bytes.
    fn data(name: &str, enc: Encoding, len: u64) -> Header {
        let p = Packet::data(1, Tag::new(Op::Broadcast, 0), Msg::new(()));
        Header::packet(&p, name.len(), enc, len)
    }

    fn next_frame(ep: &mut Endpoint) -> Frame {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match ep.next_event() {
                Some(Event::Frame(_, f)) => return f,
                Some(Event::Closed(r)) => panic!("closed: {}", ep.closed(r).unwrap()),
                None => assert!(!ep.pump(Some(until), None).unwrap(), "timed out"),
            }
        }
    }

    #[test]
    fn frames_with_and_without_descriptors() {
        let (mut a, mut b) = pair();
        let fd = super::super::shm::create(&[5; 64]).unwrap();
        let h = data("Vec<u8>", Encoding::Pod, 64).shared();
        b.write_frame(0, h, b"Vec<u8>", &[], &[fd.as_fd()], Until::default())
            .unwrap();
        let h = data("Vec<f64>", Encoding::Pod, 16).aligned(true);
        b.write_frame(
            0,
            h,
            b"Vec<f64>",
            &[&[1; 10], &[2; 6]],
            &[],
            Until::default(),
        )
        .unwrap();
        let f = next_frame(&mut a);
        assert!(f.header().is_shared());
        let p = f.into_packet().unwrap();
        assert_eq!(p.body().type_name(), Some("Vec<u8>"));
        assert_eq!(p.into_body().pod_bytes().unwrap(), [5; 64]);
        let f = next_frame(&mut a);
        assert_eq!(f.bytes(), [[1u8; 10].as_slice(), &[2; 6]].concat());
        assert!(a.next_event().is_none());
    }

    #[test]
    fn a_send_halts_on_a_word_read_before_it_began() {
        let (mut a, mut b) = pair();
        a.write_frame(1, super::expired(), b"", &[], &[], Until::default())
            .unwrap();
        // Read (into b's events, for the region protocol) before the send:
        // nothing new comes to end the send's waits, only this word can.
        let until = Some(Instant::now() + Duration::from_secs(5));
        while b.halted_for_test(1).is_none() {
            assert!(!b.pump(until, None).unwrap(), "timed out");
        }
        super::assert_halts(&mut b, data("", Encoding::Pod, 64 << 20));
        drop(a);
    }

    #[test]
    fn a_send_nobody_reads_times_out_and_loses_the_stream() {
        let (a, mut b) = pair();
        let big = vec![0u8; 64 << 20];
        let h = data("", Encoding::Pod, big.len() as u64);
        let deadline = Some(Instant::now() + Duration::from_millis(100));
        let err = b
            .write_frame(
                0,
                h,
                b"",
                &[&big],
                &[],
                Until {
                    deadline,
                    halt: None,
                },
            )
            .unwrap_err();
        assert!(matches!(err, WriteError::TimedOut));
        assert!(matches!(b.next_event(), Some(Event::Closed(0))));
        let closed = b.closed(0).unwrap();
        assert!(closed.mid_frame() && !b.is_writable(0), "{closed}");
        assert_eq!(closed.to_string(), "a send timed out mid-frame");
        drop(a);
    }

    #[test]
    fn oversized_truncated_hostile_and_closed_streams() {
        // 2^60 bytes announced: corrupt, before any allocation; the sender
        // can still be written to.
        let (mut a, mut b) = pair();
        b.write_raw(0, &data("", Encoding::Serde, 1 << 60).encode())
            .unwrap();
        assert!(
            !a.pump(Some(Instant::now() + Duration::from_secs(5)), None)
                .unwrap()
        );
        assert!(matches!(a.next_event(), Some(Event::Closed(1))));
        let closed = a.closed(1).unwrap();
        assert!(matches!(closed.corrupt(), Some(BadFrame::TooLong { .. })));
        assert!(closed.to_string().contains("over the limit"), "{closed}");
        assert!(a.is_closed(1) && a.is_writable(1));
        // A sealed but sparse memfd announcing 512 GiB: corrupt, unmapped.
        let (mut a, mut b) = pair();
        let fd = super::super::shm::sparse(512 << 30).unwrap();
        let h = data("", Encoding::Pod, 512 << 30).shared();
        b.write_frame(0, h, b"", &[], &[fd.as_fd()], Until::default())
            .unwrap();
        while !a.is_closed(1) {
            assert!(
                !a.pump(Some(Instant::now() + Duration::from_secs(5)), None)
                    .unwrap()
            );
        }
        let closed = a.closed(1).unwrap().to_string();
        assert!(closed.contains("sparse"), "{closed}");
        // A truncated frame, then the peer goes away.
        let (mut a, mut b) = pair();
        b.write_raw(0, &data("", Encoding::Serde, 100).encode())
            .unwrap();
        b.write_raw(0, &[1; 10]).unwrap();
        drop(b);
        let until = Some(Instant::now() + Duration::from_secs(5));
        while !a.is_closed(1) {
            assert!(!a.pump(until, None).unwrap());
        }
        let closed = a.closed(1).unwrap();
        assert!(closed.corrupt().is_none() && closed.mid_frame());
        assert_eq!(
            closed.to_string(),
            "connection closed in the middle of a frame (10 of 100 payload bytes)"
        );
        let h = data("", Encoding::Serde, 0);
        assert!(matches!(
            a.write_frame(1, h, b"", &[], &[], Until::default()),
            Err(WriteError::Gone)
        ));
    }
}

/// Endpoints joined by sockets and shared-memory rings, in this process:
/// frames in order, frames larger than a ring, wrap-around, and a peer's
/// death while a rank waits on its rings.
mod rings {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::super::endpoint::{Endpoint, Event, Until, WriteError};
    use super::super::frame::{DEFAULT_MAX_FRAME, Frame, Header};
    use super::super::ring;
    use crate::link::{Landing, Packet};
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
        ep.write_frame(
            to,
            data(seq, body.len()),
            b"",
            &[body],
            &[],
            Until {
                deadline: until,
                halt: None,
            },
        )
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
    fn frames_larger_than_the_ring_arrive_whole_and_in_order() {
        // Frames of every size go through the ring: several small ones fill
        // it and wait for room, larger ones stream through in pieces.
        let (mut a, mut b) = pair();
        let sizes = [200 << 10, 5 * (1 << 20) + 3, 8, 250 << 10, 1 << 20, 3];
        let body = |len: usize| -> Vec<u8> { (0..len).map(|i| (i % 253) as u8).collect() };
        let writer = std::thread::spawn(move || {
            for round in 0..3 {
                for (i, len) in sizes.iter().enumerate() {
                    send(&mut b, 0, (round * sizes.len() + i) as u64, &body(*len));
                }
            }
            b
        });
        for seq in 0..3 * sizes.len() {
            let f = next_frame(&mut a);
            assert_eq!(seq_of(&f), seq as u64);
            assert_eq!(f.bytes(), body(sizes[seq % sizes.len()]));
        }
        writer.join().unwrap();
    }

    #[test]
    fn a_frame_with_a_descriptor_keeps_its_place_between_ring_frames() {
        let (mut a, mut b) = pair();
        let fd = super::super::shm::create(&[5; 64]).unwrap();
        let writer = std::thread::spawn(move || {
            send(&mut b, 0, 1, b"before");
            let h = data(2, 64).shared();
            let until = Some(Instant::now() + Duration::from_secs(10));
            b.write_frame(
                0,
                h,
                b"",
                &[],
                &[fd.as_fd()],
                Until {
                    deadline: until,
                    halt: None,
                },
            )
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
        // A writer waiting for room in a full ring whose reader dies gets an
        // error, not a hang.
        let (a, mut b) = pair();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(a);
        });
        let frame = vec![0u8; 100 << 10];
        let until = Some(Instant::now() + Duration::from_secs(10));
        let t = Instant::now();
        let err = loop {
            if let Err(e) = b.write_frame(
                0,
                data(1, frame.len()),
                b"",
                &[&frame],
                &[],
                Until {
                    deadline: until,
                    halt: None,
                },
            ) {
                break e;
            }
        };
        assert!(matches!(err, WriteError::Gone), "{err:?}");
        assert!(b.is_closed(0) && t.elapsed() < Duration::from_secs(2));
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

    /// A receive of `len` bytes from rank 1 posted on `buf` (`post`).
    fn landing(buf: &mut [u8]) -> Arc<Landing> {
        Landing::new(1, 0, Tag::new(Op::Receive, 0), buf)
    }

    fn body(len: usize, salt: usize) -> Vec<u8> {
        (0..len).map(|i| ((i + salt) % 251) as u8).collect()
    }

    #[test]
    fn a_posted_receive_lands_only_the_frame_that_fits_it() {
        let (mut a, mut b) = pair();
        let len = 300 << 10;
        let mut buf = vec![0u8; len];
        let l = landing(&mut buf);
        assert!(a.post(1, &l));
        // One at a time: a second landing waits for the first.
        assert!(!a.post(1, &l));
        let writer = std::thread::spawn(move || {
            send(&mut b, 0, 0, &body(len - 1, 1)); // another length
            send(&mut b, 0, 1, &body(len, 2)); // the one
            send(&mut b, 0, 2, &body(len, 3)); // the landing is taken
            b
        });
        assert_eq!(next_frame(&mut a).bytes(), body(len - 1, 1));
        let landed = next_frame(&mut a).into_packet().unwrap().into_body();
        assert!(l.claim(&landed));
        assert_eq!(next_frame(&mut a).bytes(), body(len, 3));
        a.unpost(&l);
        l.withdraw();
        assert_eq!(buf, body(len, 2));
        writer.join().unwrap();
    }

    #[test]
    fn a_landing_withdrawn_mid_frame_or_unclaimed_loses_nothing() {
        // A frame five times the ring's size is half landed when the
        // landing is withdrawn: the rest goes on into a buffer of its own.
        let (mut a, mut b) = pair();
        let len = 5 << 20;
        let mut buf = vec![0u8; len];
        let l = landing(&mut buf);
        assert!(a.post(1, &l));
        let writer = std::thread::spawn(move || {
            send(&mut b, 0, 0, &body(len, 7));
            b
        });
        let until = Some(Instant::now() + Duration::from_secs(10));
        while a.payload_got(1) == 0 {
            assert!(!a.pump(until, None).unwrap(), "timed out");
        }
        assert!(a.next_event().is_none());
        a.unpost(&l);
        l.withdraw();
        let f = next_frame(&mut a);
        assert_eq!(f.bytes(), body(len, 7));
        let mut b = writer.join().unwrap();
        // Landed but not claimed (the receive failed first): the message
        // gets a copy of the bytes when the landing is withdrawn.
        let mut buf = vec![0u8; 1000];
        let l = landing(&mut buf);
        assert!(a.post(1, &l));
        send(&mut b, 0, 1, &body(1000, 9));
        let landed = next_frame(&mut a).into_packet().unwrap().into_body();
        a.unpost(&l);
        l.withdraw();
        buf.fill(0);
        assert_eq!(landed.pod_bytes().unwrap(), body(1000, 9));
    }

    #[test]
    fn a_send_nobody_reads_halts_when_main_says_the_deadline_passed() {
        let (mut a, mut b) = pair();
        a.write_frame(1, super::expired(), b"", &[], &[], Until::default())
            .unwrap();
        super::assert_halts(&mut b, data(0, 64 << 20));
        assert!(!b.is_writable(0), "half a frame is out: the stream is lost");
        // The frame that halted it is still there for the region protocol.
        assert!(
            matches!(b.next_event(), Some(Event::Frame(0, f)) if f.header().halts(1).is_some())
        );
        // Another region's sends are not halted by it: ranks 0 and 1 anew.
        let (mut a, mut b) = pair();
        a.write_frame(1, super::expired(), b"", &[], &[], Until::default())
            .unwrap();
        let until = Until {
            deadline: Some(Instant::now() + Duration::from_millis(300)),
            halt: Some(2),
        };
        let big = vec![0u8; 64 << 20];
        let err = b
            .write_frame(0, data(0, big.len()), b"", &[&big], &[], until)
            .unwrap_err();
        assert!(matches!(err, WriteError::TimedOut), "{err:?}");
    }

    #[test]
    fn a_send_whose_peer_reads_goes_on_after_main_says_the_deadline_passed() {
        let (mut a, mut b) = pair();
        a.write_frame(1, super::expired(), b"", &[], &[], Until::default())
            .unwrap();
        let len = 64 << 20;
        let reader = std::thread::spawn(move || next_frame(&mut a).bytes().len());
        let until = Until {
            deadline: Some(Instant::now() + Duration::from_secs(10)),
            halt: Some(1),
        };
        b.write_frame(0, data(0, len), b"", &[&body(len, 3)], &[], until)
            .unwrap();
        assert_eq!(reader.join().unwrap(), len);
    }
}
