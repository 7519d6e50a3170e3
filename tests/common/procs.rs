//! This process's children, read from the process table, for the tests that
//! must leave no worker behind.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The pids whose parent is this process.
pub fn children() -> Vec<i32> {
    children_where(|_| true)
}

/// The children running this test binary: the processes backend's workers
/// (it re-executes the current binary), zombies included. Other children of
/// the test process, like the `cargo` that `macros_ui`'s trybuild runs in
/// the same binary, are not counted.
pub fn workers() -> Vec<i32> {
    let me = comm(&std::fs::read_to_string("/proc/self/stat").unwrap())
        .unwrap()
        .to_string();
    children_where(|child| child == me)
}

/// Fails the test if a worker of this process is still there 3 s from now
/// (time for workers that are exiting to be reaped).
pub fn assert_no_workers_left() {
    let until = Instant::now() + Duration::from_secs(3);
    while !workers().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(workers(), Vec::<i32>::new(), "worker processes left behind");
}

/// The tests of one binary run on parallel threads, and [`workers`] sees
/// the workers of every test of the process. A test that starts workers
/// holds this (shared)...
pub fn spawns() -> RwLockReadGuard<'static, ()> {
    WORKERS.read().unwrap_or_else(|e| e.into_inner())
}

/// ...and a test that checks that no worker is left behind holds this
/// (exclusive), so it sees only its own.
pub fn counts_workers() -> RwLockWriteGuard<'static, ()> {
    WORKERS.write().unwrap_or_else(|e| e.into_inner())
}

static WORKERS: RwLock<()> = RwLock::new(());

/// The command name of a `/proc/PID/stat` line (cut to 15 bytes by the
/// kernel; kept by a zombie).
fn comm(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// The children of this process whose command name passes `keep`.
fn children_where(keep: impl Fn(&str) -> bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid: i32 = rest.split_whitespace().nth(1).unwrap().parse().unwrap();
        if ppid == me && comm(&stat).is_some_and(&keep) {
            out.push(pid);
        }
    }
    out
}
