//! The system calls on one socket, all non-blocking: reads of a frame's
//! header (with the descriptors that come with it, as `SCM_RIGHTS`), of its
//! type name and payload, and vectored writes with a descriptor attached.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use super::frame::BadFrame;

/// File descriptors accepted per header read (a payload's memfd and the
/// shared arrays' of a frame, with room for more from the next header).
const MAX_FDS: usize = 2 * (super::shared::MAX_ATTACHED + 1);

/// File descriptors sent with one frame: its payload's memfd and its
/// shared arrays'.
const MAX_SEND_FDS: usize = super::shared::MAX_ATTACHED + 1;

/// Why a read returned no bytes.
pub(super) enum ReadError {
    WouldBlock,
    Eof,
    Io(io::Error),
    Corrupt(BadFrame),
}

pub(super) fn read_error(e: Errno) -> ReadError {
    if e == Errno::WOULDBLOCK {
        ReadError::WouldBlock
    } else {
        ReadError::Io(e.into())
    }
}

/// One `recv` of type-name or payload bytes (`recv`), retried if a signal
/// interrupts it.
pub(super) fn recv_some(
    mut recv: impl FnMut() -> rustix::io::Result<usize>,
) -> Result<usize, ReadError> {
    loop {
        match recv() {
            Ok(0) => return Err(ReadError::Eof),
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(read_error(e)),
        }
    }
}

/// One `recvmsg` of header bytes into `buf`, taking the descriptors that
/// come with them.
pub(super) fn recv_header(
    sock: &UnixStream,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
) -> Result<usize, ReadError> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    let flags = RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC;
    let msg = loop {
        match rustix::net::recvmsg(sock, &mut iov, &mut control, flags) {
            Ok(msg) => break msg,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(read_error(e)),
        }
    };
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        return Err(ReadError::Corrupt(BadFrame::TooManyDescriptors));
    }
    if msg.bytes == 0 {
        return Err(ReadError::Eof);
    }
    Ok(msg.bytes)
}

/// One non-blocking `sendmsg` of `parts` from byte `skip` on, with `fds`
/// attached (at most [`MAX_SEND_FDS`]).
pub(super) fn send_some(
    sock: &UnixStream,
    parts: &[&[u8]],
    skip: usize,
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len());
    let mut skip = skip;
    for p in parts {
        if skip >= p.len() {
            skip -= p.len();
            continue;
        }
        iov.push(IoSlice::new(&p[skip..]));
        skip = 0;
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_SEND_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other(format!(
            "{} descriptors in one frame, over the limit of {MAX_SEND_FDS}",
            fds.len()
        )));
    }
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    Ok(rustix::net::sendmsg(
        sock.as_fd(),
        &iov,
        &mut control,
        flags,
    )?)
}
