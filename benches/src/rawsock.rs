//! The processes baselines: what a user would write by hand instead of the
//! `processes` backend. Main spawns copies of the bench executable
//! (`--raw-socket-child`), each connected to main by one Unix stream socket,
//! and drives them with a tiny fixed protocol: no codec, no framing beyond
//! a 17-byte command header, plain `read_exact`/`write_all`.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::measure::{Iters, median};

/// The flag that makes the bench executable a raw-socket child.
pub const CHILD_FLAG: &str = "--raw-socket-child";
/// The flag that makes the bench executable exit at once (start-up baseline).
pub const EXIT_FLAG: &str = "--exit-now";

const QUIT: u8 = 0;
const DISPATCH: u8 = 1;
const PING: u8 = 2;
const RECV: u8 = 3; // barrier, then read `a` bytes (broadcast, scatter)
const SEND: u8 = 4; // barrier, then write `a` bytes (gather)
const RECV_SEND: u8 = 5; // barrier, read `a` bytes, write them back (scatter + gather)

/// Main's side: the children and their sockets, rank order (child i = rank i+1).
pub struct SockWorld {
    children: Vec<Child>,
    socks: Vec<UnixStream>,
}

fn private_dir() -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("pzbench-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

impl SockWorld {
    /// Spawns `workers` children and connects them.
    pub fn spawn(workers: usize) -> io::Result<SockWorld> {
        let dir = private_dir()?;
        let path = dir.join("s");
        let listener = UnixListener::bind(&path)?;
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        for rank in 1..=workers {
            children.push(
                Command::new(&exe)
                    .arg(CHILD_FLAG)
                    .arg(&path)
                    .arg(rank.to_string())
                    .stdin(Stdio::null())
                    .spawn()?,
            );
        }
        let mut socks: Vec<Option<UnixStream>> = (0..workers).map(|_| None).collect();
        for _ in 0..workers {
            let (mut s, _) = listener.accept()?;
            let mut rank = [0u8; 4];
            s.read_exact(&mut rank)?;
            let rank = u32::from_le_bytes(rank) as usize;
            socks[rank - 1] = Some(s);
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir(&dir);
        Ok(SockWorld {
            children,
            socks: socks
                .into_iter()
                .map(|s| s.expect("every child connected"))
                .collect(),
        })
    }

    /// Ranks, main included.
    pub fn nprocs(&self) -> usize {
        self.socks.len() + 1
    }

    fn command(&mut self, child: usize, op: u8, a: u64, b: u64) -> io::Result<()> {
        let mut h = [0u8; 17];
        h[0] = op;
        h[1..9].copy_from_slice(&a.to_le_bytes());
        h[9..17].copy_from_slice(&b.to_le_bytes());
        self.socks[child].write_all(&h)
    }

    fn barrier(&mut self) -> io::Result<()> {
        for s in &mut self.socks {
            s.write_all(&[1])?;
        }
        for s in &mut self.socks {
            s.read_exact(&mut [0])?;
        }
        Ok(())
    }

    /// One raw "run an empty task" round trip to every child: a 16-byte
    /// task frame out, an 8-byte reply back. Median seconds.
    pub fn dispatch(&mut self, iters: Iters) -> io::Result<f64> {
        for c in 0..self.socks.len() {
            self.command(c, DISPATCH, 0, iters.total() as u64)?;
        }
        let mut samples = Vec::new();
        for i in 0..iters.total() {
            let t0 = Instant::now();
            for s in &mut self.socks {
                s.write_all(&[7u8; 16])?;
            }
            for s in &mut self.socks {
                s.read_exact(&mut [0u8; 8])?;
            }
            if i >= iters.warmup {
                samples.push(t0.elapsed().as_secs_f64());
            }
        }
        Ok(median(samples))
    }

    /// Ping-pong of `bytes` with rank 1; median one-way seconds.
    pub fn pingpong(&mut self, bytes: usize, iters: Iters) -> io::Result<f64> {
        self.command(0, PING, bytes as u64, iters.total() as u64)?;
        let out = vec![1u8; bytes];
        let mut back = vec![0u8; bytes];
        let mut samples = Vec::new();
        for i in 0..iters.total() {
            let t0 = Instant::now();
            self.socks[0].write_all(&out)?;
            self.socks[0].read_exact(&mut back)?;
            if i >= iters.warmup {
                samples.push(t0.elapsed().as_secs_f64() / 2.0);
            }
        }
        Ok(median(samples))
    }

    /// Broadcast of `data` to every child: main writes it to each socket.
    pub fn bcast(&mut self, data: &[u8], iters: Iters) -> io::Result<f64> {
        for c in 0..self.socks.len() {
            self.command(c, RECV, data.len() as u64, iters.total() as u64)?;
        }
        self.timed(iters, |w| {
            for s in &mut w.socks {
                s.write_all(data)?;
            }
            Ok(())
        })
    }

    /// Scatter of `data`: chunk i (split like `scatter`) to rank i.
    pub fn scatter(&mut self, data: &[u8], elem: usize, iters: Iters) -> io::Result<f64> {
        let bounds = byte_bounds(data.len() / elem, self.nprocs(), elem);
        for c in 0..self.socks.len() {
            let (lo, hi) = bounds[c + 1];
            self.command(c, RECV, (hi - lo) as u64, iters.total() as u64)?;
        }
        self.timed(iters, |w| {
            for (c, s) in w.socks.iter_mut().enumerate() {
                let (lo, hi) = bounds[c + 1];
                s.write_all(&data[lo..hi])?;
            }
            Ok(())
        })
    }

    /// Gather of every rank's chunk of `total_bytes` into one buffer on main.
    pub fn gather(&mut self, total_bytes: usize, elem: usize, iters: Iters) -> io::Result<f64> {
        self.gather_like(SEND, total_bytes, elem, iters)
    }

    /// Scatter then gather of the chunks (McUtils' scatter+gather).
    pub fn scatter_gather(&mut self, data: &[u8], elem: usize, iters: Iters) -> io::Result<f64> {
        let bounds = byte_bounds(data.len() / elem, self.nprocs(), elem);
        for c in 0..self.socks.len() {
            let (lo, hi) = bounds[c + 1];
            self.command(c, RECV_SEND, (hi - lo) as u64, iters.total() as u64)?;
        }
        let mut out = vec![0u8; data.len()];
        self.timed(iters, |w| {
            for (c, s) in w.socks.iter_mut().enumerate() {
                let (lo, hi) = bounds[c + 1];
                s.write_all(&data[lo..hi])?;
            }
            let (lo, hi) = bounds[0];
            out[lo..hi].copy_from_slice(&data[lo..hi]);
            for (c, s) in w.socks.iter_mut().enumerate() {
                let (lo, hi) = bounds[c + 1];
                s.read_exact(&mut out[lo..hi])?;
            }
            Ok(())
        })
    }

    fn gather_like(&mut self, op: u8, total: usize, elem: usize, iters: Iters) -> io::Result<f64> {
        let bounds = byte_bounds(total / elem, self.nprocs(), elem);
        for c in 0..self.socks.len() {
            let (lo, hi) = bounds[c + 1];
            self.command(c, op, (hi - lo) as u64, iters.total() as u64)?;
        }
        let mine = vec![3u8; bounds[0].1];
        let mut out = vec![0u8; total];
        self.timed(iters, |w| {
            out[..mine.len()].copy_from_slice(&mine);
            for (c, s) in w.socks.iter_mut().enumerate() {
                let (lo, hi) = bounds[c + 1];
                s.read_exact(&mut out[lo..hi])?;
            }
            Ok(())
        })
    }

    /// Per iteration: an untimed barrier, then `f` timed. Median seconds.
    fn timed(
        &mut self,
        iters: Iters,
        mut f: impl FnMut(&mut SockWorld) -> io::Result<()>,
    ) -> io::Result<f64> {
        let mut samples = Vec::new();
        for i in 0..iters.total() {
            self.barrier()?;
            let t0 = Instant::now();
            f(self)?;
            if i >= iters.warmup {
                samples.push(t0.elapsed().as_secs_f64());
            }
        }
        // The children finish their last read before answering a barrier.
        self.barrier()?;
        Ok(median(samples))
    }
}

impl Drop for SockWorld {
    fn drop(&mut self) {
        for c in 0..self.socks.len() {
            let _ = self.command(c, QUIT, 0, 0);
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

/// Byte ranges of each rank's chunk of `n` items of `elem` bytes, split
/// like `scatter` (`parallelizer::chunk_sizes`).
fn byte_bounds(n: usize, nprocs: usize, elem: usize) -> Vec<(usize, usize)> {
    let mut lo = 0;
    parallelizer::chunk_sizes(n, nprocs)
        .into_iter()
        .map(|k| {
            let r = (lo, lo + k * elem);
            lo += k * elem;
            r
        })
        .collect()
}

/// The child's side: connect, then serve commands until QUIT or EOF.
pub fn child_main(path: &Path, rank: usize) -> io::Result<()> {
    let mut s = UnixStream::connect(path)?;
    s.write_all(&(rank as u32).to_le_bytes())?;
    let mut buf = Vec::new();
    loop {
        let mut h = [0u8; 17];
        if s.read_exact(&mut h).is_err() {
            return Ok(());
        }
        let a = u64::from_le_bytes(h[1..9].try_into().expect("8 bytes")) as usize;
        let b = u64::from_le_bytes(h[9..17].try_into().expect("8 bytes")) as usize;
        buf.resize(a, 0u8);
        let barrier = |s: &mut UnixStream| -> io::Result<()> {
            s.read_exact(&mut [0])?;
            s.write_all(&[1])
        };
        match h[0] {
            QUIT => return Ok(()),
            DISPATCH => {
                for _ in 0..b {
                    s.read_exact(&mut [0u8; 16])?;
                    s.write_all(&[0u8; 8])?;
                }
            }
            PING => {
                for _ in 0..b {
                    s.read_exact(&mut buf)?;
                    s.write_all(&buf)?;
                }
            }
            RECV | SEND | RECV_SEND => {
                for _ in 0..b {
                    barrier(&mut s)?;
                    if h[0] != SEND {
                        s.read_exact(&mut buf)?;
                    }
                    if h[0] != RECV {
                        s.write_all(&buf)?;
                    }
                }
                barrier(&mut s)?;
            }
            other => {
                return Err(io::Error::other(format!("unknown raw-socket op {other}")));
            }
        }
    }
}

/// Median seconds to spawn `n` copies of this executable that exit at once
/// and wait for all of them (the start-up baseline).
pub fn spawn_exit(n: usize, iters: Iters) -> io::Result<f64> {
    let exe = std::env::current_exe()?;
    let mut err = None;
    let t = crate::measure::time(iters, || {
        let kids: Vec<_> = (0..n)
            .filter_map(|_| {
                Command::new(&exe)
                    .arg(EXIT_FLAG)
                    .stdin(Stdio::null())
                    .spawn()
                    .map_err(|e| err = Some(e))
                    .ok()
            })
            .collect();
        for mut k in kids {
            let _ = k.wait();
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(t),
    }
}
