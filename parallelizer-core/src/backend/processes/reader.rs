//! The parser of one stream of frames from one peer, fed by its socket or
//! by its shared-memory ring: the same bytes either way (`frame`); and why
//! a peer's streams can no longer be read ([`Closed`]).

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use rustix::net::RecvFlags;

use crate::link::Landing;

use super::frame::{BadFrame, Frame, HEADER_LEN, Header, RecvBuf, Spare};
use super::ring::{Rings, as_uninit};
use super::sock::{ReadError, recv_header, recv_some};

/// Where a stream was cut inside a frame.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cut {
    Header { got: usize },
    Payload { got: usize, of: u64 },
}

/// Why nothing more can be read from a peer (`Endpoint::closed`).
#[derive(Debug)]
pub(super) enum Closed {
    /// The stream ended or broke; `cut` says where, if inside a frame.
    Lost { why: Lost, cut: Option<Cut> },
    /// The peer sent something that is not a frame. It can still hear from
    /// us; it is the reading rank that cannot go on.
    Corrupt(BadFrame),
}

/// How a stream was lost.
#[derive(Debug)]
pub(super) enum Lost {
    /// EOF: the peer closed its end (it exited).
    Eof,
    /// The socket failed (reset, broken pipe).
    Failed(io::Error),
    /// A send to the peer timed out with part of a frame written.
    SendTimedOut,
}

impl Closed {
    /// The frame error, if the stream is corrupt.
    pub(super) fn corrupt(&self) -> Option<&BadFrame> {
        match self {
            Closed::Corrupt(b) => Some(b),
            Closed::Lost { .. } => None,
        }
    }

    /// Whether this rank cut the stream itself: a send to the peer ran
    /// into its deadline mid-frame (the peer was late, not necessarily
    /// gone).
    pub(super) fn cut_here(&self) -> bool {
        matches!(
            self,
            Closed::Lost {
                why: Lost::SendTimedOut,
                ..
            }
        )
    }

    /// Whether the stream was cut inside a frame (which says more than an
    /// exit status does).
    pub(super) fn mid_frame(&self) -> bool {
        matches!(
            self,
            Closed::Lost { cut: Some(_), .. }
                | Closed::Lost {
                    why: Lost::SendTimedOut,
                    ..
                }
        )
    }
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (why, cut) = match self {
            Closed::Corrupt(b) => return write!(f, "{b}"),
            Closed::Lost { why, cut } => (why, cut),
        };
        match why {
            Lost::Eof => f.write_str("connection closed")?,
            Lost::Failed(e) => write!(f, "connection error: {e}")?,
            Lost::SendTimedOut => f.write_str("a send timed out mid-frame")?,
        }
        match cut {
            None => Ok(()),
            Some(Cut::Payload { got, of }) => {
                write!(f, " in the middle of a frame ({got} of {of} payload bytes)")
            }
            Some(Cut::Header { got }) => write!(
                f,
                " in the middle of a frame header ({got} of {HEADER_LEN} bytes)"
            ),
        }
    }
}

/// Where a stream's bytes come from.
pub(super) enum Source<'a> {
    Socket(&'a UnixStream),
    /// The ring from rank `from`, up to its published `head`.
    Ring {
        rings: &'a Rings,
        from: usize,
        head: u64,
    },
}

impl Source<'_> {
    /// Header bytes, with the descriptors that come with them (a ring
    /// carries none).
    fn header(&self, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> Result<usize, ReadError> {
        match self {
            Source::Socket(sock) => recv_header(sock, buf, fds),
            Source::Ring { .. } => self.bytes(as_uninit(buf)),
        }
    }

    /// Type-name or payload bytes.
    fn bytes(&self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, ReadError> {
        match self {
            Source::Socket(sock) => {
                recv_some(|| rustix::net::recv(sock, &mut *buf, RecvFlags::DONTWAIT).map(|r| r.1))
            }
            Source::Ring { rings, from, head } => match rings.read(*from, *head, buf) {
                Ok(0) => Err(ReadError::WouldBlock),
                Ok(n) => Ok(n),
                Err(why) => Err(ReadError::Corrupt(BadFrame::Header(why))),
            },
        }
    }
}

/// The frame being read from one stream.
pub(super) struct Reader {
    head: [u8; HEADER_LEN],
    got: usize,
    /// The type name and payload, once the header is in.
    payload: Option<RecvBuf>,
    /// The shared arrays' descriptors that came with the header.
    attached: Vec<OwnedFd>,
}

impl Reader {
    pub(super) fn new() -> Reader {
        Reader {
            head: [0; HEADER_LEN],
            got: 0,
            payload: None,
            attached: Vec::new(),
        }
    }

    /// Where the stream stands inside a frame, if it does.
    pub(super) fn cut(&self) -> Option<Cut> {
        match &self.payload {
            Some(buf) => Some(Cut::Payload {
                got: buf.filled(),
                of: buf.header().len(),
            }),
            None if self.got > 0 => Some(Cut::Header { got: self.got }),
            None => None,
        }
    }

    /// Whether the frame being read goes into `landing`'s buffer.
    pub(super) fn lands_in(&self, landing: &Arc<Landing>) -> bool {
        self.payload.as_ref().is_some_and(|b| b.lands_in(landing))
    }

    /// The landing of the frame being read is withdrawn: the rest of it
    /// goes into a buffer of its own ([`RecvBuf::unland`]).
    pub(super) fn unland(&mut self) {
        if let Some(buf) = &mut self.payload {
            buf.unland();
        }
    }

    /// One read from `src` into where the parser needs bytes; returns a
    /// frame when one completes (a memfd is taken from `fds`). A header
    /// that `post` (a landing, with its region) takes makes its payload go
    /// into the landing's buffer, and the landing is taken.
    pub(super) fn read_some(
        &mut self,
        src: &Source<'_>,
        fds: &mut VecDeque<OwnedFd>,
        max_frame: u64,
        post: &mut Option<(u64, Arc<Landing>)>,
    ) -> Result<Option<Frame>, ReadError> {
        if let Some(buf) = &mut self.payload {
            let n = match buf.spare() {
                Spare::Name(b) => src.bytes(as_uninit(b))?,
                Spare::Payload(b) => src.bytes(b)?,
            };
            if !buf.advance(n) {
                return Ok(None);
            }
            let buf = self.payload.take().expect("checked");
            let fds = std::mem::take(&mut self.attached);
            return buf
                .finish()
                .map(|f| Some(f.with_descriptors(fds)))
                .map_err(ReadError::Corrupt);
        }
        let n = src.header(&mut self.head[self.got..], fds)?;
        self.got += n;
        if self.got < HEADER_LEN {
            return Ok(None);
        }
        self.got = 0;
        let header = Header::decode(&self.head, max_frame).map_err(ReadError::Corrupt)?;
        // A memfd came with the first bytes of its header.
        let fd = match header.is_shared() {
            true => Some(
                fds.pop_front()
                    .ok_or(ReadError::Corrupt(BadFrame::NoDescriptor))?,
            ),
            false => None,
        };
        // Then the shared arrays' descriptors.
        if fds.len() < header.attached() {
            return Err(ReadError::Corrupt(BadFrame::NoDescriptor));
        }
        self.attached = fds.drain(..header.attached()).collect();
        let buf = match post.take_if(|(region, landing)| header.lands(*region, landing)) {
            Some((_, landing)) => RecvBuf::landing(header, landing),
            None => RecvBuf::for_header(header, fd).map_err(ReadError::Corrupt)?,
        };
        if buf.missing() == 0 {
            let fds = std::mem::take(&mut self.attached);
            return buf
                .finish()
                .map(|f| Some(f.with_descriptors(fds)))
                .map_err(ReadError::Corrupt);
        }
        self.payload = Some(buf);
        Ok(None)
    }
}
