//! Starting the workers: the sockets, the launch information, the spawn,
//! the handshake message and the relay of worker output.
//!
//! Main creates one `AF_UNIX` socketpair per pair of ranks before spawning
//! (close-on-exec everywhere; each child clears the flag on its own ends
//! only), so every rank has a private socket to every other and nobody else
//! can connect. Main first makes sure its descriptor limit holds them all
//! (`RLIMIT_NOFILE`, raised up to the hard limit if it must be, else an
//! error saying how many are needed).
//!
//! What a worker needs to join (rank, nprocs, main's pid, its descriptors,
//! a random per-launch token and the configuration) comes over the boot
//! channel on its standard input (`boot`), so children start with
//! `posix_spawn` and main runs no code in them before `exec`; the
//! environment variable [`LAUNCH_ENV`] only says `MAIN_PID:0`. The worker
//! reads its launch and puts `/dev/null` on its standard input before any
//! task runs, so the programs a task starts inherit neither the token nor
//! a descriptor (and a process whose standard input is not main's socket
//! ignores the variable). Workers arm `PR_SET_PDEATHSIG(SIGKILL)`
//! themselves, and are spawned from one long-lived thread because the
//! parent-death signal follows the thread that spawned, not the process.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::{decode_serde, encode_serde};
use crate::runtime::UNPREFIXED;
use crate::trace::WORKER;

use super::boot;
use super::frame::Frame;
use super::ring::{self, Rings};
use super::trace;

/// The send buffer asked for on every socket between ranks. A large frame
/// crosses in fewer turns of writer and reader (Linux's default, 208 KiB,
/// is one turn per 208 KiB): a 1 MiB ping-pong between two processes went
/// from about 2.5 to about 4 GB/s, 16 MiB from about 2.2 to 2.8 GB/s.
const SOCKET_BUFFER: usize = 4 << 20;

/// The environment variable that makes a process a launched worker:
/// `MAIN_PID:FD`, the descriptor of its boot channel (always 0, its
/// standard input).
pub(super) const LAUNCH_ENV: &str = "PARALLELIZER_PROCESSES_LAUNCH";

/// What a worker needs to join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LaunchInfo {
    rank: u32,
    nprocs: u32,
    token: [u8; 16],
    /// For each rank, the index of the socket to it among the descriptors
    /// sent with the launch; -1 for this rank.
    fds: Vec<i32>,
    /// The indices of the shared-memory rings' memfd, then of every rank's
    /// doorbell (`ring`); none when the pool has no rings.
    rings: Vec<i32>,
    config: Config,
}

/// Parses the launch variable: main's pid and the memfd's descriptor.
pub(super) fn parse_env(text: &str) -> Result<(u32, i32)> {
    let bad = || {
        let shown: String = text.chars().take(40).collect();
        Error::Launch(format!(
            "{LAUNCH_ENV}=`{shown}` is malformed (expected MAIN_PID:FD)"
        ))
    };
    let (pid, fd) = text.split_once(':').ok_or_else(bad)?;
    let pid: u32 = pid.parse().map_err(|_| bad())?;
    let fd: i32 = fd.parse().map_err(|_| bad())?;
    if fd < 0 {
        return Err(bad());
    }
    Ok((pid, fd))
}

/// The descriptors that came with this worker's launch, each taken once.
static RECEIVED: Mutex<Vec<Option<OwnedFd>>> = Mutex::new(Vec::new());

/// Takes the launch's descriptor number `index`, if `/proc/self/fd` says it
/// `is` what the launch information says (a socket, the rings' memfd).
fn adopt(index: i32, is: impl Fn(&str) -> bool, what: &str) -> Result<OwnedFd> {
    let missing = || {
        Error::Launch(format!(
            "the launch names descriptor {index}, which it did not send"
        ))
    };
    let mut received = RECEIVED.lock().unwrap_or_else(|e| e.into_inner());
    let fd = usize::try_from(index)
        .ok()
        .and_then(|i| received.get_mut(i))
        .and_then(Option::take)
        .ok_or_else(missing)?;
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is(&target) {
        return Err(Error::Launch(format!(
            "the launch's descriptor {index} is `{target}`, not {what}"
        )));
    }
    Ok(fd)
}

impl LaunchInfo {
    fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        encode_serde(self, &mut bytes)?;
        Ok(bytes)
    }

    /// Decodes the launch information main sent.
    pub(super) fn from_bytes(bytes: &[u8]) -> Result<LaunchInfo> {
        let info: LaunchInfo = decode_serde(bytes)
            .map_err(|e| Error::Launch(format!("the launch information is malformed: {e}")))?;
        if info.rank == 0 || info.rank >= info.nprocs || info.fds.len() != info.nprocs as usize {
            return Err(Error::Launch(format!(
                "the launch information names rank {} of {} with {} descriptors",
                info.rank,
                info.nprocs,
                info.fds.len()
            )));
        }
        Ok(info)
    }

    /// The launch of this process, if main launched it: read (and the boot
    /// channel closed) once, at the first call. A process whose standard
    /// input is not main's boot socket (say, a program a worker started,
    /// which inherited the variable) is not a worker.
    pub(super) fn from_this_process() -> Option<Result<LaunchInfo>> {
        static THIS: OnceLock<Option<Result<LaunchInfo>>> = OnceLock::new();
        THIS.get_or_init(read_launch).clone()
    }

    pub(super) fn rank(&self) -> usize {
        self.rank as usize
    }

    pub(super) fn nprocs(&self) -> usize {
        self.nprocs as usize
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn into_config(self) -> Config {
        self.config
    }

    /// The hello this worker sends main: its rank, this launch's token and
    /// how it started.
    pub(super) fn hello(&self, spmd: bool, init: Option<&Error>) -> Hello {
        Hello {
            rank: self.rank,
            pid: std::process::id(),
            token: self.token,
            spmd,
            init: init.cloned(),
        }
    }

    /// Takes ownership of the received rings and doorbells and maps the
    /// rings (`None`: the pool has none). Called once per process.
    pub(super) fn adopt_rings(&self) -> Result<Option<Rings>> {
        let Some((&memfd, bells)) = self.rings.split_first() else {
            return Ok(None);
        };
        let memfd = adopt(
            memfd,
            |t| t.starts_with(&format!("/memfd:{}", ring::MEMFD)),
            "the rings' memfd",
        )?;
        let bells = bells
            .iter()
            .map(|&fd| adopt(fd, |t| t == "anon_inode:[eventfd]", "an eventfd"))
            .collect::<Result<Vec<_>>>()?;
        Rings::open(self.rank(), self.nprocs(), memfd, bells)
            .map(Some)
            .map_err(Error::Launch)
    }

    /// Takes ownership of the received sockets, making them non-blocking.
    /// Called once per process (see `serve::join`).
    pub(super) fn adopt_sockets(&self) -> Result<Vec<Option<UnixStream>>> {
        self.fds
            .iter()
            .map(|&fd| {
                if fd < 0 {
                    return Ok(None);
                }
                let owned = adopt(fd, |t| t.starts_with("socket:"), "a socket")?;
                let sock = UnixStream::from(owned);
                sock.set_nonblocking(true)?;
                Ok(Some(sock))
            })
            .collect()
    }
}

/// Reads this process's launch, if the variable is set and standard input
/// is main's boot channel.
fn read_launch() -> Option<Result<LaunchInfo>> {
    let text = std::env::var(LAUNCH_ENV).ok()?;
    let (main_pid, fd) = match parse_env(&text) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if fd != 0 {
        return Some(Err(Error::Launch(format!(
            "{LAUNCH_ENV} names descriptor {fd}; launches come on descriptor 0"
        ))));
    }
    let read = |sock: UnixStream| -> Result<LaunchInfo> {
        let (bytes, fds) = boot::recv(&sock)?;
        let info = LaunchInfo::from_bytes(&bytes)?;
        *RECEIVED.lock().unwrap_or_else(|e| e.into_inner()) = fds.into_iter().map(Some).collect();
        Ok(info)
        // The boot channel is closed here: nothing the worker starts
        // inherits it.
    };
    Some(boot::connect(main_pid)?.and_then(read))
}

/// The first message of every worker: who it is, the launch's token, and
/// whether it started well.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Hello {
    rank: u32,
    pid: u32,
    token: [u8; 16],
    spmd: bool,
    init: Option<Error>,
}

impl Hello {
    /// Main: checks a Hello frame from rank `from` against this launch's
    /// `token`; `Ok(spmd)`, or why the worker cannot serve.
    pub(super) fn check(frame: Frame, from: usize, token: &[u8; 16]) -> Result<bool> {
        let hello: Hello = decode_serde(&frame.bytes())
            .map_err(|e| Error::Launch(format!("rank {from} sent a malformed hello: {e}")))?;
        if hello.token != *token || hello.rank as usize != from {
            return Err(Error::Launch(format!(
                "rank {from} sent a hello with a wrong token or rank"
            )));
        }
        match hello.init {
            Some(init) => Err(init.on_rank(from)),
            None => Ok(hello.spmd),
        }
    }
}

/// A random per-launch token.
fn token() -> [u8; 16] {
    let mut t = [0u8; 16];
    if !matches!(
        rustix::rand::getrandom(&mut t, rustix::rand::GetRandomFlags::empty()),
        Ok(16)
    ) {
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

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns on one thread that never exits, so `PR_SET_PDEATHSIG` fires when
/// main's process dies, not when the thread that entered finishes.
fn spawn_on_launcher(cmd: Command) -> Result<Child> {
    static LAUNCHER: Mutex<Option<mpsc::Sender<SpawnJob>>> = Mutex::new(None);
    let mut guard = LAUNCHER.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("parallelizer-launcher".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // `cmd` (and the worker's socket ends its pre-exec hook
                    // owns) is dropped here, once the child has them.
                    let _ = reply.send(cmd.spawn());
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

/// Main's side of a launch.
pub(super) struct Launched {
    /// Main's socket to each worker (index = rank; `None` for rank 0).
    pub(super) socks: Vec<Option<UnixStream>>,
    /// The workers (index = rank; `None` for rank 0).
    pub(super) children: Vec<Option<Child>>,
    pub(super) token: [u8; 16],
    /// Signalled by each output relay when its pipe closes.
    pub(super) relays: Vec<mpsc::Receiver<()>>,
    /// Main's view of the shared-memory rings, if the pool has them.
    pub(super) rings: Option<Rings>,
}

/// Copies a worker's output to ours line by line, each line prefixed with
/// `[rank N] ` (but for lines marked [`UNPREFIXED`], which are printed
/// without the mark); a partial last line is flushed at EOF.
fn relay(
    rank: usize,
    from: impl std::io::Read + Send + 'static,
    to_stderr: bool,
    dispatch: Option<tracing::Dispatch>,
) -> mpsc::Receiver<()> {
    // A test worker's libtest prints a `running 1 test` banner first.
    let mut in_banner = !to_stderr && crate::entry::current_test().is_some();
    let (done_tx, done_rx) = mpsc::channel();
    // Without a thread the pipe closes and the worker's writes fail quietly.
    let _ = std::thread::Builder::new()
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
                    // A forwarded `tracing` event, for main's subscriber.
                    Ok(_) if to_stderr && trace::reemit(rank, &line, dispatch.as_ref()) => {}
                    Ok(_) => {
                        in_banner = false;
                        let mut buf = Vec::with_capacity(prefix.len() + line.len() + 1);
                        // `worker_print` lines carry McUtils' own prefix.
                        match line.strip_prefix(UNPREFIXED.as_bytes()) {
                            Some(rest) => buf.extend_from_slice(rest),
                            None => {
                                buf.extend_from_slice(prefix.as_bytes());
                                buf.extend_from_slice(&line);
                            }
                        }
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
    done_rx
}

/// Waits up to `within` for the output relays to drain their pipes.
pub(super) fn wait_relays(relays: &[mpsc::Receiver<()>], within: Duration) {
    let until = Instant::now() + within;
    for r in relays {
        let _ = r.recv_timeout(until.saturating_duration_since(Instant::now()));
    }
}

/// Starts ranks `1..nprocs` as copies of this executable, with
/// shared-memory rings between all ranks if `rings`.
pub(super) fn launch(
    nprocs: usize,
    config: &Config,
    prefix_output: bool,
    rings: bool,
) -> Result<Launched> {
    // The rings' memfd and doorbells, in main and, while a worker starts,
    // its copies.
    ensure_descriptors(nprocs, if rings { 2 * (nprocs as u64 + 1) } else { 0 })?;
    let rings = match rings {
        true => Some(Rings::create(nprocs, nprocs > crate::runtime::cores())?),
        false => None,
    };
    let exe = std::env::current_exe()?;
    let token = token();
    // ends[i][j]: rank i's end of the socket between i and j.
    let mut ends: Vec<Vec<Option<UnixStream>>> = (0..nprocs)
        .map(|_| (0..nprocs).map(|_| None).collect())
        .collect();
    for (i, j) in (0..nprocs).flat_map(|i| (i + 1..nprocs).map(move |j| (i, j))) {
        let (a, b) = UnixStream::pair()?;
        for end in [&a, &b] {
            // Advice: the kernel caps it at `net.core.wmem_max`.
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(end, SOCKET_BUFFER);
        }
        ends[i][j] = Some(a);
        ends[j][i] = Some(b);
    }
    let main_pid = std::process::id();
    // Workers may read main's memory (lent buffers), also where Yama's
    // ptrace_scope is 1; without Yama this fails harmlessly.
    super::boot::allow_reads_by(main_pid);
    let args = worker_args();
    // Workers forward their `tracing` events to the subscriber that is the
    // default here, if it wants any (through the stderr relay).
    let trace_level = prefix_output.then(trace::level_for_workers).flatten();
    let dispatch = trace_level.map(|_| tracing::dispatcher::get_default(Clone::clone));
    let mut children: Vec<Option<Child>> = (0..nprocs).map(|_| None).collect();
    let mut relays = Vec::new();
    let mut failure = None;
    for (rank, mine) in ends.iter_mut().enumerate().skip(1) {
        // What goes over the boot channel: this worker's socket ends, then
        // the rings' memfd and doorbells; the launch names them by index.
        let mut send_fds: Vec<BorrowedFd<'_>> = Vec::new();
        let mut fds = Vec::with_capacity(nprocs);
        for end in mine.iter() {
            fds.push(end.as_ref().map_or(-1, |s| {
                send_fds.push(s.as_fd());
                send_fds.len() as i32 - 1
            }));
        }
        let ring_fds: Vec<i32> = rings
            .iter()
            .flat_map(Rings::descriptors)
            .map(|fd| {
                send_fds.push(fd);
                send_fds.len() as i32 - 1
            })
            .collect();
        let info = LaunchInfo {
            rank: rank as u32,
            nprocs: nprocs as u32,
            token,
            fds,
            rings: ring_fds,
            config: config.clone(),
        };
        let bytes = match info.to_bytes() {
            Ok(b) => b,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let (boot_main, boot_child) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => {
                failure = Some(e.into());
                break;
            }
        };
        let mut cmd = Command::new(&exe);
        // Nothing runs in the child before `exec` (no pre-exec hook): the
        // standard library spawns it with `posix_spawn`.
        cmd.args(&args)
            .env(LAUNCH_ENV, format!("{main_pid}:0"))
            .stdin(Stdio::from(OwnedFd::from(boot_child)));
        if prefix_output {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        if let Some(level) = trace_level {
            cmd.env(trace::TRACE_ENV, level.as_str());
        }
        match spawn_on_launcher(cmd) {
            Ok(mut child) => {
                tracing::info!(target: WORKER, rank, pid = child.id(), "worker process spawned");
                if let Some(out) = child.stdout.take() {
                    relays.push(relay(rank, out, false, None));
                }
                if let Some(err) = child.stderr.take() {
                    relays.push(relay(rank, err, true, dispatch.clone()));
                }
                let sent = boot::send(&boot_main, &bytes, &send_fds);
                children[rank] = Some(child);
                if let Err(e) = sent {
                    failure = Some(e);
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let socks = std::mem::take(&mut ends[0]);
    drop(ends); // the ends of workers not started (after a failure)
    if let Some(e) = failure {
        kill_and_reap(children.iter_mut().flatten());
        return Err(e);
    }
    for s in socks.iter().flatten() {
        s.set_nonblocking(true)?;
    }
    Ok(Launched {
        socks,
        children,
        token,
        relays,
        rings,
    })
}

/// Makes sure main may hold every descriptor a launch of `nprocs` ranks
/// (and `more`) needs at once, raising its soft `RLIMIT_NOFILE` up to the hard limit if
/// it must.
fn ensure_descriptors(nprocs: usize, more: u64) -> Result<()> {
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as u64 + more;
    let limit = rustix::process::getrlimit(Resource::Nofile);
    if let Some(raise) = descriptor_budget(nprocs as u64, open, limit.current, limit.maximum)? {
        let raised = Rlimit {
            current: Some(raise),
            maximum: limit.maximum,
        };
        rustix::process::setrlimit(Resource::Nofile, raised).map_err(|e| {
            Error::Launch(format!(
                "cannot raise the limit of open files (RLIMIT_NOFILE) to {raise}: {e}"
            ))
        })?;
    }
    Ok(())
}

/// The soft descriptor limit to set before launching `nprocs` ranks with
/// `open` descriptors open (`None`: the soft limit will do), or the error
/// saying how many are needed. `None` limits are unlimited.
fn descriptor_budget(
    nprocs: u64,
    open: u64,
    soft: Option<u64>,
    hard: Option<u64>,
) -> Result<Option<u64>> {
    let workers = nprocs.saturating_sub(1);
    // Both ends of a socketpair per pair of ranks, and per worker being
    // spawned its boot socketpair and two pipes (both ends), plus a margin.
    let sockets = nprocs * workers;
    let needed = open + sockets + 5 * workers + 32;
    if soft.is_none_or(|s| needed <= s) {
        return Ok(None);
    }
    match hard {
        Some(hard) if hard < needed => Err(Error::Launch(format!(
            "{nprocs} ranks need about {needed} open files in main while the workers start \
             ({sockets} socket ends, one per rank for each other rank, {} for pipes, \
             {open} already open), but its limit of open files (RLIMIT_NOFILE) is {hard}; \
             raise it (`ulimit -n {needed}`) or use fewer ranks",
            5 * workers
        ))),
        Some(hard) => Ok(Some(hard)),
        None => Ok(Some(needed)),
    }
}

/// SIGKILLs and reaps every child still running.
pub(super) fn kill_and_reap<'a>(children: impl IntoIterator<Item = &'a mut Child>) {
    let mut children: Vec<&mut Child> = children.into_iter().collect();
    for child in &mut children {
        // A no-op for a child already reaped.
        let _ = child.kill();
    }
    for child in children {
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_info_roundtrips_and_the_variable_is_checked() {
        let info = LaunchInfo {
            rank: 2,
            nprocs: 4,
            token: [9; 16],
            fds: vec![5, 6, -1, 7],
            rings: vec![8, 9, 10, 11, 12],
            config: Config::new("processes").nprocs(4),
        };
        let back = LaunchInfo::from_bytes(&info.to_bytes().unwrap()).unwrap();
        assert_eq!(
            (back.rank, back.fds, back.config),
            (2, vec![5, 6, -1, 7], info.config.clone())
        );
        assert!(LaunchInfo::from_bytes(b"zz").is_err());
        let wrong = LaunchInfo { rank: 4, ..info };
        assert!(LaunchInfo::from_bytes(&wrong.to_bytes().unwrap()).is_err());
        assert_eq!(parse_env("123:7").unwrap(), (123, 7));
        for bad in ["", "123", "x:7", "123:-1", "123:7:8"] {
            assert!(matches!(parse_env(bad), Err(Error::Launch(_))), "{bad}");
        }
        let huge = "9".repeat(1 << 20);
        let err = parse_env(&huge).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn the_descriptor_limit_is_raised_or_the_error_says_what_is_needed() {
        // Enough already, or no limit.
        assert_eq!(
            descriptor_budget(4, 10, Some(1024), Some(4096)).unwrap(),
            None
        );
        assert_eq!(descriptor_budget(64, 10, None, None).unwrap(), None);
        // 64 ranks under `ulimit -n 1024`: raised to the hard limit.
        assert_eq!(
            descriptor_budget(64, 10, Some(1024), Some(1 << 20)).unwrap(),
            Some(1 << 20)
        );
        assert_eq!(
            descriptor_budget(64, 10, Some(1024), None).unwrap(),
            Some(10 + 4032 + 315 + 32)
        );
        // The hard limit is too low: say how many.
        let err = descriptor_budget(64, 10, Some(1024), Some(2048))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("4389 open files") && err.contains("4032 socket ends"),
            "{err}"
        );
        assert!(
            err.contains("is 2048") && err.contains("ulimit -n 4389"),
            "{err}"
        );
    }
}
