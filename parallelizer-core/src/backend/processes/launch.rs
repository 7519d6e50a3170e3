//! Starting, watching and reaping worker processes.
//!
//! Main creates one `AF_UNIX` socketpair per pair of ranks before spawning
//! (close-on-exec everywhere; each child clears the flag on its own ends
//! only), so every rank has a private socket to every other and nobody else
//! can connect. The launch environment (rank, nprocs, main's pid, the
//! descriptors, a random per-launch token and the configuration) travels in
//! one environment variable. Children get `PR_SET_PDEATHSIG(SIGKILL)`, and
//! are spawned from one long-lived thread because the parent-death signal
//! follows the thread that forked, not the process.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::{decode_serde, encode_serde};

/// The environment variable that makes a process a launched worker.
pub(crate) const LAUNCH_ENV: &str = "PARALLELIZER_PROCESSES_LAUNCH";

/// What a worker needs to join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LaunchInfo {
    pub rank: u32,
    pub nprocs: u32,
    pub main_pid: u32,
    pub token: [u8; 16],
    /// Descriptor to each rank, -1 for this rank.
    pub fds: Vec<i32>,
    pub config: Config,
}

impl LaunchInfo {
    fn to_env(&self) -> Result<String> {
        let mut bytes = Vec::new();
        encode_serde(self, &mut bytes)?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    fn from_env(text: &str) -> Result<LaunchInfo> {
        let bad = || Error::Config(format!("{LAUNCH_ENV} is malformed"));
        if !text.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>>>()?;
        decode_serde(&bytes)
    }

    /// The launch environment of this process, if main launched it. A
    /// process whose parent is not the launching main (say, a program a
    /// worker started, which inherited the variable) is not a worker.
    pub(crate) fn from_this_process() -> Option<Result<LaunchInfo>> {
        let text = std::env::var(LAUNCH_ENV).ok()?;
        let info = match LaunchInfo::from_env(&text) {
            Ok(i) => i,
            Err(e) => return Some(Err(e)),
        };
        // SAFETY: getppid cannot fail.
        let ppid = unsafe { libc::getppid() } as u32;
        if ppid != info.main_pid {
            return None;
        }
        Some(Ok(info))
    }

    /// Takes ownership of the inherited descriptors, making them
    /// close-on-exec and non-blocking again.
    pub(crate) fn adopt_fds(&self) -> Result<Vec<Option<OwnedFd>>> {
        self.fds
            .iter()
            .map(|&fd| {
                if fd < 0 {
                    return Ok(None);
                }
                // SAFETY: fcntl on an inherited descriptor; checked below.
                if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                    return Err(Error::Config(format!(
                        "{LAUNCH_ENV} names descriptor {fd}, which is not open in this process"
                    )));
                }
                // SAFETY: the descriptor was inherited for this process alone.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                set_cloexec(fd, true)?;
                set_nonblocking(fd)?;
                Ok(Some(owned))
            })
            .collect()
    }
}

fn set_cloexec(fd: RawFd, on: bool) -> Result<()> {
    // SAFETY: fcntl on a valid descriptor.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, if on { libc::FD_CLOEXEC } else { 0 }) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

pub(crate) fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a valid descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    Ok(())
}

fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: both descriptors were just created.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A random per-launch token.
pub(crate) fn token() -> [u8; 16] {
    let mut t = [0u8; 16];
    // SAFETY: `t` is 16 writable bytes.
    let n = unsafe { libc::getrandom(t.as_mut_ptr() as *mut libc::c_void, 16, 0) };
    if n != 16 {
        // Fall back on the process-random hasher keys and the clock.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos());
        t[..8].copy_from_slice(&h.finish().to_le_bytes());
        t[8..].copy_from_slice(&std::process::id().to_le_bytes().repeat(2));
    }
    t
}

fn worker_args() -> Vec<OsString> {
    match crate::entry::current_test() {
        Some(name) => vec![
            name.into(),
            "--exact".into(),
            "--nocapture".into(),
            "--include-ignored".into(),
            "--test-threads=1".into(),
            "--quiet".into(),
        ],
        None => std::env::args_os().skip(1).collect(),
    }
}

/// A spawned worker: its pid and, when output is relayed, its pipes.
type Spawned = (u32, Option<ChildStdout>, Option<ChildStderr>);
type SpawnJob = (Command, mpsc::Sender<std::io::Result<Spawned>>);

/// Spawns on one thread that never exits, so `PR_SET_PDEATHSIG` fires when
/// main's process dies, not when the thread that entered finishes.
fn spawn_on_launcher(cmd: Command) -> Result<Spawned> {
    static LAUNCHER: Mutex<Option<mpsc::Sender<SpawnJob>>> = Mutex::new(None);
    let mut guard = LAUNCHER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("parallelizer-launcher".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // Never waited through `Child`: pids are reaped with waitpid.
                    let _ = reply.send(
                        cmd.spawn()
                            .map(|mut c| (c.id(), c.stdout.take(), c.stderr.take())),
                    );
                }
            })?;
        *guard = Some(tx);
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    guard
        .as_ref()
        .expect("set above")
        .send((cmd, reply_tx))
        .map_err(|_| Error::Launch("the launcher thread is gone".into()))?;
    drop(guard);
    reply_rx
        .recv()
        .map_err(|_| Error::Launch("the launcher thread is gone".into()))?
        .map_err(Error::from)
}

/// Main's side of a launch: its socket to each worker and the worker pids
/// (index = rank; `None` for rank 0).
pub(crate) struct Launched {
    pub fds: Vec<Option<OwnedFd>>,
    pub pids: Vec<Option<i32>>,
    pub token: [u8; 16],
    /// Signalled by each output relay when its pipe closes.
    pub relays: Vec<mpsc::Receiver<()>>,
}

/// Copies a worker's output to ours line by line, each line prefixed with
/// `[rank N] `; a partial last line is flushed at EOF.
fn relay(
    rank: usize,
    from: impl std::io::Read + Send + 'static,
    to_stderr: bool,
) -> mpsc::Receiver<()> {
    // A test worker's libtest prints a `running 1 test` banner first.
    let mut in_banner = !to_stderr && crate::entry::current_test().is_some();
    let (done_tx, done_rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("parallelizer-rank-{rank}-output"))
        .spawn(move || {
            use std::io::{BufRead, Write};
            let mut reader = std::io::BufReader::new(from);
            let prefix = format!("[rank {rank}] ");
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if in_banner && matches!(line.trim_ascii(), b"" | b"running 1 test") => {}
                    Ok(_) => {
                        in_banner = false;
                        let mut buf = Vec::with_capacity(prefix.len() + line.len() + 1);
                        buf.extend_from_slice(prefix.as_bytes());
                        buf.extend_from_slice(&line);
                        if !line.ends_with(b"\n") {
                            buf.push(b'\n');
                        }
                        let _ = if to_stderr {
                            std::io::stderr().lock().write_all(&buf)
                        } else {
                            std::io::stdout().lock().write_all(&buf)
                        };
                    }
                }
            }
            let _ = done_tx.send(());
        });
    if spawned.is_err() {
        // No thread: the pipe closes and the worker's writes fail quietly.
    }
    done_rx
}

/// Waits up to `within` for the output relays to drain their pipes.
pub(crate) fn wait_relays(relays: &[mpsc::Receiver<()>], within: Duration) {
    let until = Instant::now() + within;
    for r in relays {
        let _ = r.recv_timeout(until.saturating_duration_since(Instant::now()));
    }
}

/// Starts ranks `1..nprocs` as copies of this executable.
pub(crate) fn launch(nprocs: usize, config: &Config, prefix_output: bool) -> Result<Launched> {
    let exe = std::env::current_exe()?;
    let token = token();
    // matrix[i][j]: rank i's end of the socket between i and j.
    let mut matrix: Vec<Vec<Option<OwnedFd>>> = (0..nprocs)
        .map(|_| (0..nprocs).map(|_| None).collect())
        .collect();
    for (i, j) in (0..nprocs).flat_map(|i| (i + 1..nprocs).map(move |j| (i, j))) {
        let (a, b) = socketpair()?;
        matrix[i][j] = Some(a);
        matrix[j][i] = Some(b);
    }
    let main_pid = std::process::id();
    let args = worker_args();
    let mut pids: Vec<Option<i32>> = vec![None; nprocs];
    let mut relays = Vec::new();
    let mut failure = None;
    for rank in 1..nprocs {
        let fds: Vec<i32> = matrix[rank]
            .iter()
            .map(|f| f.as_ref().map_or(-1, |f| f.as_raw_fd()))
            .collect();
        let info = LaunchInfo {
            rank: rank as u32,
            nprocs: nprocs as u32,
            main_pid,
            token,
            fds: fds.clone(),
            config: config.clone(),
        };
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .env(LAUNCH_ENV, info.to_env()?)
            .stdin(Stdio::null());
        if prefix_output {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let keep: Vec<RawFd> = fds.into_iter().filter(|&f| f >= 0).collect();
        // SAFETY: only async-signal-safe calls (fcntl, prctl, getppid, _exit).
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &keep {
                    if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Main died between fork and prctl: do not outlive it.
                if libc::getppid() as u32 != main_pid {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        match spawn_on_launcher(cmd) {
            Ok((pid, out, err)) => {
                pids[rank] = Some(pid as i32);
                if let Some(out) = out {
                    relays.push(relay(rank, out, false));
                }
                if let Some(err) = err {
                    relays.push(relay(rank, err, true));
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let main_fds = std::mem::take(&mut matrix[0]);
    drop(matrix); // the workers' ends, now in the workers
    if let Some(e) = failure {
        kill_and_reap(&pids);
        return Err(e);
    }
    for fd in main_fds.iter().flatten() {
        set_nonblocking(fd.as_raw_fd())?;
    }
    Ok(Launched {
        fds: main_fds,
        pids,
        token,
        relays,
    })
}

/// How a process ended, in words.
pub(crate) fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = match sig {
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGTERM => " (SIGTERM)",
            _ => "",
        };
        format!("killed by signal {sig}{name}")
    } else {
        format!("ended with wait status {status:#x}")
    }
}

/// Waits up to `within` for `pid` to end and reaps it; `None` if it is
/// still running.
pub(crate) fn wait_status(pid: i32, within: Duration) -> Option<String> {
    let until = Instant::now() + within;
    // A worker told to shut down exits within microseconds to a few
    // milliseconds: poll fast at first, then back off to 5 ms.
    let mut pause = Duration::from_micros(20);
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(describe(status));
        }
        if r < 0 {
            return Some("already reaped".into());
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// SIGKILLs and reaps every pid still running.
pub(crate) fn kill_and_reap(pids: &[Option<i32>]) {
    for pid in pids.iter().flatten() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    for pid in pids.iter().flatten() {
        let mut status = 0;
        // SAFETY: waitpid on our own child (ECHILD if already reaped).
        unsafe { libc::waitpid(*pid, &mut status, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_info_roundtrips_through_the_environment() {
        let info = LaunchInfo {
            rank: 2,
            nprocs: 4,
            main_pid: 77,
            token: [9; 16],
            fds: vec![5, 6, -1, 7],
            config: Config::new("processes").nprocs(4),
        };
        let back = LaunchInfo::from_env(&info.to_env().unwrap()).unwrap();
        assert_eq!(
            (back.rank, back.fds, back.config),
            (2, vec![5, 6, -1, 7], info.config)
        );
        assert!(LaunchInfo::from_env("zz").is_err());
    }
}
