//! The `processes` backend without the guard (SPMD): the workers run this
//! program's `main` from the top, like MPI ranks, and join when they build
//! the same parallelizer; closures then work, and collectives pair up.
//!
//! `harness = false`: the harness (no `SPMD_RANKS` in the environment)
//! re-runs this binary once per rank count as the SPMD program, checks its
//! exit status, and checks that no process is left behind (it is a child
//! subreaper, so orphans would come back to it). Speaks enough of libtest's
//! command line for `cargo nextest run` (`--list`, `--exact NAME`).

#[cfg(target_os = "linux")]
fn main() {
    use std::time::{Duration, Instant};
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("spmd_2_3_4_ranks: test");
        }
        return;
    }
    if let Ok(n) = std::env::var("SPMD_RANKS") {
        spmd_program(n.parse().expect("SPMD_RANKS"));
        return;
    }
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let exe = std::env::current_exe().unwrap();
    let mut failed = 0;
    for n in [2, 3, 4] {
        let t = Instant::now();
        let status = std::process::Command::new(&exe)
            .env("SPMD_RANKS", n.to_string())
            .status()
            .unwrap();
        let mut leftover = children();
        let until = Instant::now() + Duration::from_secs(3);
        while !leftover.is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
            // Reap whatever came back to us.
            // SAFETY: non-blocking waitpid on any child.
            unsafe { while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {} };
            leftover = children();
        }
        let ok = status.success() && leftover.is_empty();
        println!(
            "test spmd with {n} ranks ... {} ({:.2?}, {status}, leftover {leftover:?})",
            if ok { "ok" } else { "FAILED" },
            t.elapsed()
        );
        failed += usize::from(!ok);
    }
    // A worker panics inside a region: main reports it and exits cleanly.
    let t = Instant::now();
    let (status, stdout, stderr) = on_3_ranks(&exe, ("SPMD_PANIC_RANK", "2"));
    // The worker's panic message reached main's stderr, prefixed with its rank.
    let relayed = stderr
        .lines()
        .any(|l| l.starts_with("[rank 2] ") && l.contains("spmd boom on 2"));
    let ok = status.success() && stdout.contains("spmd panic on rank 2 reported") && relayed;
    let detail = format!("{:.2?}", t.elapsed());
    failed += verdict(
        "spmd worker panic reported",
        ok,
        &detail,
        &[&stdout, &stderr],
    );

    // Issue 11: a worker's panic or exit outside any region reaches main —
    // the next call that involves it fails with its error; if main makes
    // none, main exits non-zero with the worker's message on stderr.
    for (fault, want_code, want_out, want_err) in [
        (
            "panic",
            Some(0),
            "fault reported: rank 2 panicked: spmd worker 2 gives up",
            "",
        ),
        (
            "exit",
            Some(0),
            "fault reported: worker rank 2 died (exited with status 3)",
            "",
        ),
        (
            "silent",
            Some(101),
            "",
            "parallelizer: worker rank 2 exited with status 101",
        ),
    ] {
        let t = Instant::now();
        let (status, stdout, stderr) = on_3_ranks(&exe, ("SPMD_FAULT", fault));
        let relayed = stderr
            .lines()
            .any(|l| l.starts_with("[rank 2] ") && l.contains("spmd worker 2 gives up"));
        let ok = status.code() == want_code
            && stdout.contains(want_out)
            && stderr.contains(want_err)
            && (fault == "exit" || relayed);
        let name = format!("spmd worker {fault} outside a region reaches main");
        let detail = format!("{:.2?}, {}", t.elapsed(), status);
        failed += verdict(&name, ok, &detail, &[&stdout, &stderr]);
    }

    // A worker blocked sending a late rank more than its ring holds at the
    // deadline: main names the late rank, not the sender, and the sender is
    // released at the deadline, not when the late rank reads at last.
    let t = Instant::now();
    let (status, stdout, stderr) = on_3_ranks(&exe, ("SPMD_LATE_SEND", "1"));
    let released = stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("[rank 1] sender released after ")?;
        rest.split(' ').next()?.parse::<f64>().ok()
    });
    let ok = status.success()
        && stdout.contains("late rank named: 2")
        && released.is_some_and(|s| s < LATE_SLEEP.as_secs_f64() / 2.0);
    let name = "spmd late receiver named, its sender released";
    let detail = format!("{:.2?}, released after {released:?} s", t.elapsed());
    failed += verdict(name, ok, &detail, &[&stdout, &stderr]);

    // No orphans: SIGKILL main while its workers are alive; the parent-death
    // signal takes them down with it.
    let t = Instant::now();
    let mut child = std::process::Command::new(&exe)
        .env("SPMD_RANKS", "3")
        .env("SPMD_ORPHAN", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            break;
        }
    }
    let before = children().len();
    child.kill().unwrap();
    child.wait().unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    let mut leftover = children();
    while !leftover.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        // SAFETY: non-blocking waitpid on any child.
        unsafe { while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {} };
        leftover = children();
    }
    let ok = line.contains("ready") && before == 1 && leftover.is_empty();
    println!(
        "test spmd workers die with main ... {} ({:.2?}, leftover {leftover:?})",
        if ok { "ok" } else { "FAILED" },
        t.elapsed()
    );
    failed += usize::from(!ok);

    println!("{} passed, {failed} failed", 9 - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}

/// This program on 3 ranks with `var` set: its exit status, stdout and
/// stderr.
#[cfg(target_os = "linux")]
fn on_3_ranks(
    exe: &std::path::Path,
    (var, value): (&str, &str),
) -> (std::process::ExitStatus, String, String) {
    let out = std::process::Command::new(exe)
        .env("SPMD_RANKS", "3")
        .env(var, value)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status, text(&out.stdout), text(&out.stderr))
}

/// Prints a case's line as libtest does (and, if it failed, `dump`: the
/// program's outputs); 1 if it failed.
#[cfg(target_os = "linux")]
fn verdict(name: &str, ok: bool, detail: &str, dump: &[&str]) -> usize {
    let result = if ok { "ok" } else { "FAILED" };
    println!("test {name} ... {result} ({detail})");
    if !ok {
        println!("{}", dump.join("\n"));
    }
    usize::from(!ok)
}

#[cfg(not(target_os = "linux"))]
fn main() {}

#[cfg(target_os = "linux")]
mod common;

/// How long the late rank of the late-send case sleeps (past the 1 s
/// deadline).
#[cfg(target_os = "linux")]
const LATE_SLEEP: std::time::Duration = std::time::Duration::from_secs(4);
#[cfg(target_os = "linux")]
use common::procs::children;

/// Runs on every rank: main and each worker execute this same code.
#[cfg(target_os = "linux")]
fn spmd_program(n: usize) {
    use parallelizer::prelude::*;
    use std::time::Duration;

    let late_send = std::env::var_os("SPMD_LATE_SEND").is_some();
    let timeout = Duration::from_secs(if late_send { 1 } else { 60 });
    let par =
        parallelizer::from_config(Config::new("processes").nprocs(n).timeout(timeout)).unwrap();
    let serial = parallelizer::from_config("serial").unwrap();

    // A panic on a worker inside a region is that worker's error on main,
    // and releases every rank.
    if let Ok(bad) = std::env::var("SPMD_PANIC_RANK") {
        let bad: usize = bad.parse().unwrap();
        let r = par.run(
            move |p: &dyn Parallelizer, ()| {
                if p.id() == bad {
                    panic!("spmd boom on {bad} (pid {})", std::process::id());
                }
                p.gather(p.id())
            },
            (),
        );
        if par.on_main() {
            match r {
                Err(Error::WorkerPanicked { rank, message })
                    if rank == bad && message.contains("spmd boom") =>
                {
                    println!("spmd panic on rank {bad} reported");
                }
                other => panic!("expected WorkerPanicked from rank {bad}, got {other:?}"),
            }
        }
        return;
    }

    if late_send {
        // Rank 1 sends rank 2 16 MiB (more than a ring holds) while rank 2
        // sleeps past the deadline; main waits in the gather.
        let t = std::time::Instant::now();
        let r = par.run(
            |p: &dyn Parallelizer, ()| -> Result<(), String> {
                let big = 16 << 20;
                match p.id() {
                    1 => p
                        .send_slice(&vec![7u8; big], 2)
                        .map_err(|e| e.to_string())?,
                    2 => {
                        std::thread::sleep(LATE_SLEEP);
                        p.receive_into(&mut vec![0u8; big], 1)
                            .map_err(|e| e.to_string())?;
                    }
                    _ => {}
                }
                p.gather(p.id()).map(drop).map_err(|e| e.to_string())
            },
            (),
        );
        match (par.id(), r) {
            (0, Err(Error::Timeout { rank, .. })) => {
                println!("late rank named: {rank} ({:.2?})", t.elapsed());
                // Time for rank 1's line before main's exit ends the job.
                std::thread::sleep(Duration::from_millis(500));
            }
            (0, other) => panic!("expected a Timeout naming rank 2, got {other:?}"),
            (1, r) => eprintln!(
                "sender released after {:.3} s: {r:?}",
                t.elapsed().as_secs_f64()
            ),
            _ => {}
        }
        return;
    }

    if let Ok(fault) = std::env::var("SPMD_FAULT") {
        // Everyone is up (main starts the workers at `enter`) and main has
        // finished its gather (worker 2 has main's broadcast that follows
        // it); then worker 2 fails outside any region.
        let _entered = par.enter().unwrap();
        par.gather(par.id()).unwrap();
        par.broadcast(par.on_main().then_some(0u8)).unwrap();
        match (fault.as_str(), par.id()) {
            ("panic" | "silent", 2) => panic!("spmd worker 2 gives up"),
            ("exit", 2) => std::process::exit(3),
            ("silent", _) => {}
            (_, 0) => match par.gather(0usize) {
                Err(e) => println!("fault reported: {e}"),
                Ok(v) => panic!("main's gather succeeded without rank 2: {v:?}"),
            },
            _ => drop(par.gather(par.id())),
        }
        return;
    }

    // A closure region: every rank runs it with its own handle.
    let lens = |p: &dyn Parallelizer, k: usize| {
        let chunk = p
            .scatter(p.on_main().then(|| (0..k).collect::<Vec<usize>>()))
            .unwrap();
        p.gather(chunk.len()).unwrap()
    };
    let got = par.run(lens, 10).unwrap();
    if par.on_main() {
        assert_eq!(got, Some(parallelizer::chunk_sizes(10, n)));
    } else {
        assert_eq!(got, None);
    }

    // Collectives straight on the parallelizer (every rank is in the region).
    assert!(par.in_region());
    let b = par
        .broadcast(par.on_main().then(|| String::from("woop")))
        .unwrap();
    assert_eq!(b, "woop");
    let ids = par.gather(par.id()).unwrap();
    if par.on_main() {
        assert_eq!(ids, Some((0..n).collect()));
    }

    // Maps of closures, against serial.
    let maps = |p: &dyn Parallelizer, k: u64| {
        let data = || p.on_main().then(|| (0..k).collect::<Vec<u64>>());
        let a = p.map(|x: u64| x * 3 + 1, data()).unwrap();
        let b = p
            .map_with(|x: u64, e: &u64| x + e, data(), p.on_main().then_some(100))
            .unwrap();
        let c = p
            .map_chunks(|xs: Vec<u64>| vec![xs.iter().sum::<u64>()], data())
            .unwrap();
        (a, b, c.map(|c| c.iter().sum::<u64>()))
    };
    let got = par.run(maps, 50).unwrap();
    if par.on_main() {
        assert_eq!(got, serial.run(maps, 50).unwrap());
    }

    // Point to point around a ring, worker to worker included.
    let (id, np) = (par.id(), par.nprocs());
    par.send(id * 100, (id + 1) % np).unwrap();
    let got: usize = par.receive((id + np - 1) % np).unwrap();
    assert_eq!(got, ((id + np - 1) % np) * 100);
    par.wait().unwrap();

    // Large plain data through shared memory.
    let big = par
        .broadcast_pod(par.on_main().then(|| vec![1.25f64; 1 << 18]))
        .unwrap();
    assert_eq!(big.iter().sum::<f64>(), 1.25 * (1 << 18) as f64);

    if std::env::var_os("SPMD_ORPHAN").is_some() {
        if par.on_main() {
            println!("ready");
        }
        std::thread::sleep(Duration::from_secs(60));
        return;
    }

    // Groups, SPMD: a split inside a region, and members-only subgroups of
    // the parallelizer itself (always in a region here); the others go on.
    let split = par.run(common::split_parity, ()).unwrap();
    if par.on_main() {
        assert_eq!(split, Some(common::expected_split(n)));
    }
    let ends = [0, n - 1];
    match par.subgroup(&ends) {
        Ok(g) => {
            let view = g.run(common::group_view, 6).unwrap();
            assert_eq!(view, par.on_main().then(|| common::expected_view(&ends, 6)));
        }
        Err(Error::ContractViolation(_)) => assert!(!ends.contains(&par.id())),
        Err(e) => panic!("subgroup: {e}"),
    }

    // A worker whose assertions failed has panicked by now: main's gather
    // reports it, and main exits non-zero.
    let all = par.gather(true).unwrap();
    if par.on_main() {
        assert_eq!(all, Some(vec![true; n]));
        println!("spmd program with {n} ranks: ok");
    }
}
