//! Tests of `port`: messages in band, in words and through shared memory,
//! packets of other regions, lost and corrupt peers, send deadlines.

use std::os::unix::net::UnixStream;

use super::*;

/// Two ports (ranks 0 and 1) of region 1 joined by a socketpair.
fn pair(shm_threshold: usize) -> (Port, Port) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let max = super::super::frame::DEFAULT_MAX_FRAME;
    let net = |rank, socks| Net::new(Endpoint::new(rank, socks, max), (shm_threshold, true), None);
    let (na, nb) = (net(0, vec![None, Some(a)]), net(1, vec![Some(b), None]));
    (na.port(1, None, None), nb.port(1, None, None))
}

fn next(port: &Port) -> Event {
    port.recv(Some(Instant::now() + Duration::from_secs(5)))
        .unwrap()
        .expect("an event")
}

fn body(port: &Port) -> Msg {
    match next(port) {
        Event::Packet { packet, .. } => packet.into_body(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_in_band_in_words_and_through_shared_memory() {
    let (a, b) = pair(1024);
    let tag = Tag::new(Op::Gather, 0);
    let send = |m: Msg| b.send(0, Packet::data(1, tag, m)).unwrap();
    send(Msg::new(vec!["x".to_string(); 3]));
    send(Msg::pod(vec![3u8; 4096])); // large, yet in band: one receiver
    send(Msg::pod((0..1000).map(f64::from).collect::<Vec<f64>>())); // words
    send(Msg::new(123456789u64));
    // A group's packets keep their group, in band and in a memfd.
    b.send(0, Packet::data(1, tag, Msg::new(5u8)).in_group(u64::MAX))
        .unwrap();
    let big = Packet::data(1, Tag::new(Op::Broadcast, 1), Msg::pod(vec![7u32; 100_000]));
    a.send_all(&[1], &big.in_group(42)).unwrap(); // memfd
    assert_eq!(
        body(&a).into_value::<Vec<String>>().unwrap(),
        ["x", "x", "x"]
    );
    assert_eq!(body(&a).into_pod::<u8>().unwrap(), vec![3; 4096]);
    let v = body(&a).into_pod::<f64>().unwrap();
    assert_eq!((v.len(), v[999]), (1000, 999.0));
    // The sender's type name came along: a wrong-type receive says so.
    let err = body(&a).into_value::<i64>().unwrap_err().to_string();
    assert!(err.contains("i64") && err.contains("u64"), "{err}");
    match next(&a) {
        Event::Packet { packet, .. } => assert_eq!(packet.group(), u64::MAX),
        other => panic!("{other:?}"),
    }
    match next(&b) {
        Event::Packet { from: 0, packet } => {
            assert_eq!(
                (packet.tag(), packet.group()),
                (Tag::new(Op::Broadcast, 1), 42)
            );
            assert_eq!(
                packet.into_body().into_pod::<u32>().unwrap(),
                vec![7; 100_000]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn packets_of_other_regions_wait_or_are_dropped() {
    let (a, b) = pair(usize::MAX);
    let tag = Tag::new(Op::Gather, 0);
    for region in [3, 0, 1] {
        b.send(0, Packet::data(region, tag, Msg::new(region)))
            .unwrap();
    }
    // Region 1 takes its own; 3 (not begun) and 0 (ambient) wait.
    assert_eq!(body(&a).into_value::<u64>().unwrap(), 1);
    let t = Instant::now();
    assert!(
        a.recv(Some(t + Duration::from_millis(50)))
            .unwrap()
            .is_none()
    );
    let later = a.net.port(3, None, None);
    assert_eq!(body(&later).into_value::<u64>().unwrap(), 3);
    let ambient = a.net.port(0, None, None);
    assert_eq!(body(&ambient).into_value::<u64>().unwrap(), 0);
    // While the ambient port receives, packets of the latest region
    // wait for its port.
    b.send(0, Packet::data(3, tag, Msg::new(33u64))).unwrap();
    b.send(0, Packet::data(0, tag, Msg::new(7u64))).unwrap();
    assert_eq!(body(&ambient).into_value::<u64>().unwrap(), 7);
    assert_eq!(body(&later).into_value::<u64>().unwrap(), 33);
    // Region 2 is over once 3 has begun: its packets are dropped.
    b.send(0, Packet::data(2, tag, Msg::new(2u64))).unwrap();
    assert!(
        later
            .recv(Some(Instant::now() + Duration::from_millis(50)))
            .unwrap()
            .is_none()
    );
    assert!(a.net.lock().early.is_empty());
}

#[test]
fn lost_and_corrupt_peers() {
    // Main: a corrupt stream is the sender's loss, with the frame error.
    let (a, b) = pair(usize::MAX);
    b.net.write_raw(0, &[0xAB; 64]).unwrap();
    match next(&a) {
        Event::Gone {
            rank: 1,
            error: Error::Codec(m),
        } => assert!(m.contains("magic"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A worker: its receive fails first, then the peer is gone, once.
    let (a, b) = pair(usize::MAX);
    a.net.write_raw(1, &[0xAB; 64]).unwrap();
    let until = Some(Instant::now() + Duration::from_secs(5));
    assert!(matches!(b.recv(until), Err(Error::Codec(_))));
    assert!(matches!(
        next(&b),
        Event::Gone {
            rank: 0,
            error: Error::Codec(_)
        }
    ));
    assert!(
        b.recv(Some(Instant::now() + Duration::from_millis(20)))
            .unwrap()
            .is_none()
    );
    // A peer that closed is gone for every region, with what it sent first.
    let (a, b) = pair(usize::MAX);
    b.send(0, Packet::data(1, Tag::new(Op::Gather, 0), Msg::new(5u8)))
        .unwrap();
    b.net.close_all();
    assert_eq!(body(&a).into_value::<u8>().unwrap(), 5);
    match next(&a) {
        Event::Gone {
            rank: 1,
            error: Error::WorkerDied { rank: 1, status },
        } => {
            assert_eq!(status, "connection closed")
        }
        other => panic!("{other:?}"),
    }
    let later = a.net.port(2, None, None);
    assert!(matches!(next(&later), Event::Gone { rank: 1, .. }));
    // Sending to it fails with the same error.
    let err = a.send(1, Packet::data(1, Tag::new(Op::Gather, 1), Msg::new(1u8)));
    assert!(
        matches!(err, Err(Error::WorkerDied { rank: 1, .. })),
        "{err:?}"
    );
}

#[test]
fn a_send_past_the_deadline_is_a_timeout_naming_the_receiver() {
    let (a, b) = pair(usize::MAX);
    let b = b.net.port(
        1,
        Some(Instant::now() + Duration::from_millis(100)),
        Some(Duration::from_millis(100)),
    );
    // Nobody reads rank 0's end: a 64 MiB frame cannot be written.
    let err = b
        .send(
            0,
            Packet::data(1, Tag::new(Op::Broadcast, 0), Msg::pod(vec![0u8; 64 << 20])),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                op: Op::Run,
                rank: 0,
                ..
            }
        ),
        "{err}"
    );
    drop(a);
}
