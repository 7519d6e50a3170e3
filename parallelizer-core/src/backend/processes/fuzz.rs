//! Entry points for the fuzz targets in the repository's `fuzz/` folder
//! (cargo-fuzz): the frame reader and the launch parsers, fed arbitrary
//! bytes. Not an API (hidden from the docs); each only parses, takes in and
//! drops.

use std::io::Write;
use std::time::Instant;

use crate::config::Config;
use crate::link::{Event, Limits, LinkRank, Packet, Transport};
use crate::msg::{Encoding, Msg, encode_serde};
use crate::op::{Op, Tag};
use crate::parallelizer::Core;

use super::frame::{DEFAULT_MAX_FRAME, HEADER_LEN, Header, Kind, RecvBuf, Spare};
use super::launch::{self, Hello, LaunchInfo};

/// The ranks of the region the fuzzed frames arrive in (main's view).
const RANKS: usize = 4;
/// The largest memfd a fuzzed shared-memory frame gets (sparse beyond its
/// bytes; a memfd costs no memory for the pages nobody wrote).
const MAX_MEMFD: u64 = 1 << 30;

/// A transport that drops what is sent and has nothing to receive: main's
/// rank takes in the fuzzed packets through `LinkRank::deliver`.
struct Nowhere;

impl Transport for Nowhere {
    fn send(&self, _: usize, _: Packet) -> crate::Result<()> {
        Ok(())
    }
    fn recv(&self, _: Option<Instant>) -> crate::Result<Option<Event>> {
        Ok(None)
    }
}

/// Reads `stream` as the bytes a rank's socket delivers, the way the
/// endpoint's reader does (a header, bounds-checked before anything is
/// allocated; the type name and payload assembled as they arrive, here
/// `step` bytes at a time), and takes in each complete frame as its
/// receiver would: a Packet frame is delivered to main's rank handle of a
/// region (which decodes notes and queues messages) and its message decoded
/// as plain data and as serde values; Hello and Run frames are decoded. A
/// shared-memory frame gets a sealed memfd holding the next bytes of the
/// stream, sized as its first 8 bytes say (at most 1 GiB, sparse beyond
/// what was written), so the memfd checks run too. Stops at the first
/// corrupt frame (the reader drops the stream then) or where the bytes end.
pub fn frames(stream: &[u8], step: usize) {
    let step = step.clamp(1, 1 << 16);
    let main = LinkRank::new(
        &Core::new(Config::new("processes")),
        0,
        RANKS,
        1,
        Limits::from_config(&Config::new("processes")),
        Nowhere,
    );
    let mut at = 0;
    let mut from = 1;
    while let Some(head) = stream.get(at..at + HEADER_LEN) {
        at += HEADER_LEN;
        let head: &[u8; HEADER_LEN] = head.try_into().expect("HEADER_LEN bytes");
        let Ok(header) = Header::decode(head, DEFAULT_MAX_FRAME) else {
            return;
        };
        let fd = if header.is_shared() {
            let Some(fd) = memfd(stream, &mut at) else {
                return;
            };
            Some(fd)
        } else {
            None
        };
        let Ok(mut buf) = RecvBuf::for_header(header, fd) else {
            return;
        };
        while buf.missing() > 0 {
            let rest = &stream[at..];
            let n = match buf.spare() {
                Spare::Name(to) => {
                    let n = to.len().min(step).min(rest.len());
                    to[..n].copy_from_slice(&rest[..n]);
                    n
                }
                Spare::Payload(to) => {
                    let n = to.len().min(step).min(rest.len());
                    for (to, from) in to[..n].iter_mut().zip(rest) {
                        to.write(*from);
                    }
                    n
                }
            };
            if n == 0 {
                return; // the stream ends inside the frame (EOF)
            }
            at += n;
            buf.advance(n);
        }
        let Ok(frame) = buf.finish() else {
            return;
        };
        match frame.header().kind() {
            Kind::Packet => {
                if let Some(packet) = frame.into_packet() {
                    if let Some(copy) = packet.body().try_clone() {
                        decode(copy);
                    }
                    main.deliver(Event::Packet { from, packet });
                }
            }
            Kind::Hello => {
                let _ = Hello::check(frame, from, &[0; 16]);
            }
            Kind::Run => {
                if let Some((_, args)) = frame.into_run() {
                    decode(args);
                }
            }
            Kind::Shutdown | Kind::Broken => {}
        }
        from = from % (RANKS - 1) + 1;
    }
}

/// A message decoded as a receiver might ask for it.
fn decode(msg: Msg) {
    if let Some(copy) = msg.try_clone() {
        let _ = copy.into_pod::<f64>();
    }
    if let Some(copy) = msg.try_clone() {
        let _ = copy.into_value::<Vec<String>>();
    }
    let _ = msg.into_value::<(u64, Option<crate::Error>)>();
}

/// A sealed memfd for a shared-memory frame: its size from the next 8
/// bytes of `stream` (at most [`MAX_MEMFD`]), its content the bytes after
/// them (at most 4 KiB, never more than the size).
fn memfd(stream: &[u8], at: &mut usize) -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let size = u64::from_le_bytes(stream.get(*at..*at + 8)?.try_into().ok()?) % (MAX_MEMFD + 1);
    *at += 8;
    let take = (stream.len() - *at).min(4096).min(size as usize);
    let bytes = &stream[*at..*at + take];
    *at += take;
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let fd = rustix::fs::memfd_create("parallelizer-fuzz", flags).ok()?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes).ok()?;
    rustix::fs::ftruncate(&file, size).ok()?;
    let seals = SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL;
    rustix::fs::fcntl_add_seals(&file, seals).ok()?;
    Some(file.into())
}

/// Parses `text` as the launch environment variable a worker reads
/// (`MAIN_PID:FD`) and `bytes` as the launch information its memfd holds.
pub fn launch(text: &str, bytes: &[u8]) {
    let _ = launch::parse_env(text);
    let _ = LaunchInfo::from_bytes(bytes);
}

/// Valid frames: a seed for the frame fuzz target (a packet of each
/// encoding, an aligned plain-data packet, a note, a Run frame, a Hello,
/// a shared-memory packet with its memfd's size and bytes, a Shutdown) and
/// all of them back to back.
pub fn seed_frames() -> Vec<Vec<u8>> {
    let frame = |header: Header, name: &str, payload: &[u8]| {
        let mut out = header.encode().to_vec();
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(payload);
        out
    };
    let packet = |kind: crate::link::Kind, msg: Msg| {
        let p = Packet::from_parts(kind, Tag::new(Op::Gather, 3), 1, msg);
        let name = p.body().type_name().unwrap_or("").to_string();
        (p, name)
    };
    let mut seeds = Vec::new();
    let (p, name) = packet(
        crate::link::Kind::Data,
        Msg::new(vec!["a".to_string(), "bc".to_string()]),
    );
    let bytes = p.body().to_bytes().expect("encodes");
    let h = Header::packet(&p, name.len(), Encoding::Serde, bytes.len() as u64);
    seeds.push(frame(h, &name, &bytes));
    let (p, name) = packet(crate::link::Kind::Data, Msg::pod(vec![1.5f64, -2.0, 3.25]));
    let bytes = p.body().pod_bytes().expect("plain data").to_vec();
    let h = Header::packet(&p, name.len(), Encoding::Pod, bytes.len() as u64).aligned(true);
    seeds.push(frame(h, &name, &bytes));
    let (p, name) = packet(crate::link::Kind::Data, Msg::pod(vec![1u8, 2, 3]));
    let h = Header::packet(&p, name.len(), Encoding::Pod, 3);
    seeds.push(frame(h, &name, &[1, 2, 3]));
    let mut shared = frame(h.shared(), &name, &[]);
    shared.extend_from_slice(&3u64.to_le_bytes());
    shared.extend_from_slice(&[1, 2, 3]);
    seeds.push(shared);
    let (p, _) = packet(crate::link::Kind::Abort, Msg::new(()));
    let mut note = Vec::new();
    encode_serde(
        &(2u64, Some(crate::Error::Aborted { by_rank: 2 })),
        &mut note,
    )
    .expect("encodes");
    let h = Header::packet(&p, 0, Encoding::Serde, note.len() as u64);
    seeds.push(frame(h, "", &note));
    let mut run = 7u32.to_le_bytes().to_vec();
    encode_serde(&(1u64, "x".to_string()), &mut run).expect("encodes");
    seeds.push(frame(
        Header::control(Kind::Run, 1, 0, run.len() as u64),
        "",
        &run,
    ));
    let mut hello = Vec::new();
    encode_serde(
        &(1u32, 42u32, [0u8; 16], false, None::<crate::Error>),
        &mut hello,
    )
    .expect("encodes");
    seeds.push(frame(
        Header::control(Kind::Hello, 0, 0, hello.len() as u64),
        "",
        &hello,
    ));
    seeds.push(frame(Header::control(Kind::Shutdown, 0, 0, 0), "", &[]));
    let all = seeds.concat();
    seeds.push(all);
    seeds
}

/// A valid launch: the variable's text and the launch information's bytes
/// (as main sends them on the boot channel), newline apart (the fuzz target
/// splits its input at the first newline). The fields of `LaunchInfo`, in
/// order: postcard encodes a struct as the tuple of its fields.
pub fn seed_launch() -> Vec<u8> {
    let info = (
        2u32,
        4u32,
        [9u8; 16],
        vec![5i32, 6, -1, 7],
        Vec::<i32>::new(),
        Config::new("processes").nprocs(4).option("max_frame", 4096),
    );
    let mut bytes = b"77:0\n".to_vec();
    encode_serde(&info, &mut bytes).expect("encodes");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_read_whole_at_any_step() {
        for seed in seed_frames() {
            for step in [1, 7, 4096] {
                frames(&seed, step);
            }
        }
        let seed = seed_launch();
        let (text, bytes) = seed.split_at(seed.iter().position(|&b| b == b'\n').unwrap());
        assert!(launch::parse_env(std::str::from_utf8(text).unwrap()).is_ok());
        assert!(LaunchInfo::from_bytes(&bytes[1..]).is_ok());
        launch("zz", b"");
    }
}
