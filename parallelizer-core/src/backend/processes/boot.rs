//! The boot channel: how a worker gets its launch information and its
//! descriptors without main running code in the child before `exec`.
//!
//! Main spawns a worker with nothing but a socket on its standard input
//! (one end of a fresh socketpair); everything else is close-on-exec. So
//! the standard library can start the child with `posix_spawn` (a `vfork`,
//! no copy of main's page tables: starting a worker from a parent of a few
//! GiB costs what it costs from a small one) instead of `fork` + a pre-exec
//! hook. Main then writes the launch information on its end and sends the
//! worker's descriptors (its sockets, the rings' memfd, the doorbells) as
//! `SCM_RIGHTS`, in chunks of at most [`CHUNK`].
//!
//! The worker knows the socket is main's from the kernel, not from the
//! environment: the peer credentials of a socketpair are those of the
//! process that made it, so a program a worker starts (which inherits the
//! environment, but not that socket) is not taken for a worker. The worker
//! then sets its parent-death signal itself, checks that main is still its
//! parent (else main died before the signal was armed), moves the socket
//! off descriptor 0 and puts `/dev/null` there.
//!
//! Wire: `info_len: u32 LE`, `fd_count: u32 LE`, the info bytes, then one
//! byte per chunk of descriptors, each byte carrying its chunk.

use std::io::{ErrorKind, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use rustix::process::Signal;

use crate::error::{Error, Result};

/// Descriptors per boot message (the kernel takes up to 253).
const CHUNK: usize = 64;

/// How long either side waits for the other on the boot channel: main for
/// a worker to take its launch (only if it is over the socket's buffer),
/// a worker for main to send it (main sends right after the spawn).
const PATIENCE: Duration = Duration::from_secs(30);

/// The largest launch information a worker accepts.
const MAX_INFO: u32 = 64 << 20;

/// The most descriptors a worker accepts (sockets, rings, doorbells of
/// a launch of about 16,000 ranks).
const MAX_FDS: u32 = 1 << 16;

/// Main: sends `info` and `fds` to a just-spawned worker on `sock`.
pub(super) fn send(sock: &UnixStream, info: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
    let too_big = || Error::Launch(format!("a launch of {} bytes is too large", info.len()));
    let len = u32::try_from(info.len()).map_err(|_| too_big())?;
    if len > MAX_INFO || fds.len() > MAX_FDS as usize {
        return Err(too_big());
    }
    sock.set_write_timeout(Some(PATIENCE))?;
    let mut out = sock;
    let head = [len.to_le_bytes(), (fds.len() as u32).to_le_bytes()].concat();
    out.write_all(&head)?;
    out.write_all(info)?;
    for chunk in fds.chunks(CHUNK) {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(CHUNK))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let pushed = control.push(SendAncillaryMessage::ScmRights(chunk));
        debug_assert!(pushed, "a chunk fits its buffer");
        loop {
            match rustix::net::sendmsg(
                sock.as_fd(),
                &[std::io::IoSlice::new(&[chunk.len() as u8])],
                &mut control,
                SendFlags::NOSIGNAL,
            ) {
                Ok(1) => break,
                Ok(_) => return Err(Error::Launch("a boot message was cut short".into())),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(std::io::Error::from(e).into()),
            }
        }
    }
    Ok(())
}

/// Worker: the boot channel on standard input, if main (`main_pid`) made
/// it; `None` if this process is not one of its workers. Arms the
/// parent-death signal and takes the socket off standard input.
pub(super) fn connect(main_pid: u32) -> Option<Result<UnixStream>> {
    let stdin = std::io::stdin();
    let peer = rustix::net::sockopt::socket_peercred(stdin.as_fd()).ok()?;
    if peer.pid.as_raw_nonzero().get() as u32 != main_pid {
        return None;
    }
    let connect = || -> Result<UnixStream> {
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
            .map_err(std::io::Error::from)?;
        // Main died before the signal was armed: do not outlive it.
        let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_pid() as u32);
        if ppid != main_pid {
            return Err(Error::Launch(format!(
                "main (pid {main_pid}) exited before this worker started"
            )));
        }
        // Main and the other workers may read this worker's lent buffers.
        allow_reads_by(main_pid);
        let sock =
            rustix::io::fcntl_dupfd_cloexec(stdin.as_fd(), 3).map_err(std::io::Error::from)?;
        let null = std::fs::File::open("/dev/null")?;
        rustix::stdio::dup2_stdin(&null).map_err(std::io::Error::from)?;
        let sock = UnixStream::from(sock);
        sock.set_read_timeout(Some(PATIENCE))?;
        Ok(sock)
    };
    Some(connect())
}

/// Worker: receives the launch information and the descriptors main sent.
pub(super) fn recv(sock: &UnixStream) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut head = [0u8; 8];
    let mut input = sock;
    input
        .read_exact(&mut head)
        .map_err(|e| lost(e, "the launch information"))?;
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let count = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_INFO || count > MAX_FDS {
        return Err(Error::Launch(format!(
            "the boot channel announces {len} bytes and {count} descriptors, over the limits \
             of {MAX_INFO} and {MAX_FDS}"
        )));
    }
    let mut info = vec![0; len as usize];
    input
        .read_exact(&mut info)
        .map_err(|e| lost(e, "the launch information"))?;
    let mut fds = Vec::with_capacity(count as usize);
    while fds.len() < count as usize {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(CHUNK))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut byte)];
        let msg = loop {
            match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(msg) => break msg,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(lost(e.into(), "all the descriptors")),
            }
        };
        if msg.bytes == 0 {
            return Err(lost(ErrorKind::UnexpectedEof.into(), "all the descriptors"));
        }
        let before = fds.len();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) || fds.len() - before != usize::from(byte[0]) {
            return Err(Error::Launch(format!(
                "a boot message announced {} descriptors and carried {}",
                byte[0],
                fds.len() - before
            )));
        }
    }
    Ok((info, fds))
}

/// Why the boot channel did not deliver `what`: main closed it, sent
/// nothing for [`PATIENCE`], or the read failed.
fn lost(e: std::io::Error, what: &str) -> Error {
    match e.kind() {
        ErrorKind::UnexpectedEof => {
            Error::Launch(format!("main closed the boot channel before {what}"))
        }
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Error::Launch(format!(
            "main sent nothing on the boot channel for {} s (waiting for {what})",
            PATIENCE.as_secs()
        )),
        _ => e.into(),
    }
}

/// Lets process `pid` and its descendants (main and every worker) read this
/// process's memory with `process_vm_readv` where Yama's `ptrace_scope` is
/// 1 (the default on several distributions). A system without Yama, or one
/// that forbids it anyway, makes receivers refuse loans instead.
pub(super) fn allow_reads_by(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::set_ptracer(rustix::process::PTracer::ProcessID(pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_descriptors_cross_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        // More descriptors than one chunk, each told apart by its peer.
        let pairs: Vec<(UnixStream, UnixStream)> = (0..CHUNK + 3)
            .map(|_| UnixStream::pair().unwrap())
            .collect();
        let fds: Vec<BorrowedFd<'_>> = pairs.iter().map(|(x, _)| x.as_fd()).collect();
        send(&a, b"launch", &fds).unwrap();
        let (info, got) = recv(&b).unwrap();
        assert_eq!(info, b"launch");
        assert_eq!(got.len(), pairs.len());
        for (i, (fd, (_, peer))) in got.into_iter().zip(&pairs).enumerate() {
            let mut s = UnixStream::from(fd);
            s.write_all(&[i as u8]).unwrap();
            let mut one = [0u8];
            (&*peer).read_exact(&mut one).unwrap();
            assert_eq!(one[0], i as u8);
        }
    }

    #[test]
    fn a_closed_or_lying_channel_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&[4, 0, 0, 0, 0, 0, 0, 0, b'x']).unwrap();
        drop(a);
        let e = recv(&b).unwrap_err();
        assert!(
            e.to_string().contains("before the launch information"),
            "{e}"
        );

        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&[0, 0, 0, 0, 0, 0, 0, 0x40]).unwrap();
        let e = recv(&b).unwrap_err();
        assert!(e.to_string().contains("over the limits"), "{e}");

        // A silent main: the read times out (the worker waits PATIENCE).
        let (_a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let e = recv(&b).unwrap_err();
        assert!(
            e.to_string().contains("sent nothing on the boot channel"),
            "{e}"
        );

        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&[0, 0, 0, 0, 2, 0, 0, 0, 2]).unwrap();
        let e = recv(&b).unwrap_err();
        assert!(
            e.to_string()
                .contains("announced 2 descriptors and carried 0"),
            "{e}"
        );
    }
}
