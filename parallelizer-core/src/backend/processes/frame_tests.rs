//! Tests of `frame`: headers, bounds, and payloads that grow as bytes arrive.

use super::*;

fn data(len: u64, enc: Encoding) -> Header {
    let p = Packet::data(7, Tag::new(Op::Gather, 3), Msg::new(()));
    Header::packet(&p, 0, enc, len)
}

/// Fills `buf` with `bytes` the way the endpoint does, in pieces of at
/// most `piece` bytes; whether it completed.
fn feed(buf: &mut RecvBuf, bytes: &[u8], piece: usize) -> bool {
    let mut done = false;
    for chunk in bytes.chunks(piece) {
        let mut at = 0;
        while at < chunk.len() {
            let n = match buf.spare() {
                Spare::Name(spare) => {
                    let n = spare.len().min(chunk.len() - at);
                    spare[..n].copy_from_slice(&chunk[at..at + n]);
                    n
                }
                Spare::Payload(spare) => {
                    let n = spare.len().min(chunk.len() - at);
                    for (s, b) in spare[..n].iter_mut().zip(&chunk[at..at + n]) {
                        s.write(*b);
                    }
                    n
                }
            };
            done = buf.advance(n);
            at += n;
        }
    }
    done
}

#[test]
fn header_roundtrip_and_bounds() {
    let h = data(123, Encoding::Serde);
    assert_eq!(Header::decode(&h.encode(), 1000).unwrap(), h);
    let run = Header::control(Kind::Run, 9, 5, 40);
    assert_eq!(Header::decode(&run.encode(), 1000).unwrap(), run);
    // A packet's group travels with it; a frame that is not a packet
    // has none.
    let p = Packet::data(7, Tag::new(Op::Gather, 3), Msg::new(())).in_group(u64::MAX - 1);
    let grouped = Header::packet(&p, 0, Encoding::Serde, 5);
    assert_eq!(
        Header::decode(&grouped.encode(), 1000).unwrap().group,
        u64::MAX - 1
    );
    let mut bad = run.encode();
    bad[31] = 1;
    assert!(Header::decode(&bad, 1000).is_err());
    let huge = data(1 << 60, Encoding::Serde);
    assert!(matches!(
        Header::decode(&huge.encode(), DEFAULT_MAX_FRAME),
        Err(BadFrame::TooLong { .. })
    ));
    let mut bad = h.encode();
    bad[0] = 0;
    assert!(matches!(
        Header::decode(&bad, 1000),
        Err(BadFrame::Magic(0x5000))
    ));
    // Descriptors of shared arrays: at most 32, on packets and Run frames.
    let with = h.with_attached(3);
    let back = Header::decode(&with.encode(), 1000).unwrap();
    assert_eq!(back.attached(), 3);
    let hello = Header::control(Kind::Hello, 0, 0, 0).encode();
    let mut bad = hello;
    bad[7] = 1;
    assert!(Header::decode(&hello, 1000).is_ok());
    assert!(
        Header::decode(&bad, 1000).is_err(),
        "descriptors on a Hello"
    );
    for (at, value) in [(2, 99), (3, 77), (4, 0), (6, 4), (7, 33), (42, 1)] {
        let mut bad = h.encode();
        bad[at] = value;
        assert!(Header::decode(&bad, 1000).is_err(), "byte {at} = {value}");
    }
    let mut long_name = h.encode();
    long_name[40..42].copy_from_slice(&2000u16.to_le_bytes());
    assert!(matches!(
        Header::decode(&long_name, 1000),
        Err(BadFrame::NameTooLong(2000))
    ));
    // The alignment flag is only valid on plain data of whole words.
    let odd = data(12, Encoding::Pod).aligned(true);
    assert!(matches!(
        Header::decode(&odd.encode(), 1 << 20),
        Err(BadFrame::Alignment { .. })
    ));
    // A memfd may be larger than the in-band limit, and has no payload.
    let shm = data(1 << 30, Encoding::Pod).shared();
    assert_eq!(Header::decode(&shm.encode(), 1000).unwrap().in_band(), 0);
    let p = Header::decode(&shm.encode(), 1000).unwrap();
    assert_eq!(p.packet, Some((PacketKind::Data, Tag::new(Op::Gather, 3))));
}

#[test]
fn payloads_grow_as_bytes_arrive() {
    // 2^33 bytes announced: nothing near that is reserved up front.
    let mut buf = RecvBuf::for_header(data(1 << 33, Encoding::Serde), None).unwrap();
    assert!(buf.spare().len() <= 2 * RESERVE_AHEAD);
    // A type name, then words, filled in pieces that need not be words.
    let p = Packet::data(1, Tag::new(Op::Broadcast, 0), Msg::new(())).in_group(5);
    let h = Header::packet(&p, 3, Encoding::Pod, 16).aligned(true);
    let mut buf = RecvBuf::for_header(h, None).unwrap();
    let mut bytes = b"u64".to_vec();
    bytes.extend([1u8; 5]);
    bytes.extend([2u8; 11]);
    assert!(feed(&mut buf, &bytes, 5));
    let frame = buf.finish().unwrap();
    assert!(matches!(frame.body, Body::Words(_, 16)));
    let packet = frame.into_packet().unwrap();
    assert_eq!(
        (packet.group(), packet.body().type_name()),
        (5, Some("u64"))
    );
    assert_eq!(
        packet.into_body().pod_bytes().unwrap(),
        [[1u8; 5].as_slice(), &[2; 11]].concat()
    );
}

#[test]
fn aligned_plain_data_reserves_nothing_it_has_not_received() {
    // Issue 11: a header announcing 8 GiB of 8-byte words made the reader
    // reserve all of it before any payload arrived.
    let h = data(1 << 33, Encoding::Pod).aligned(true);
    let mut buf = RecvBuf::for_header(h, None).unwrap();
    let Data::Words { words, .. } = &buf.data else {
        panic!("words")
    };
    assert!(
        words.capacity() * 8 <= RESERVE_AHEAD,
        "{}",
        words.capacity()
    );
    assert!(buf.spare().len() <= RESERVE_AHEAD);
    // Growing keeps what arrived: 3 MiB in odd pieces.
    let len = 3 << 20;
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut buf = RecvBuf::for_header(data(len as u64, Encoding::Pod).aligned(true), None).unwrap();
    assert!(feed(&mut buf, &bytes, 100_003));
    assert_eq!(buf.finish().unwrap().bytes(), bytes);
}
