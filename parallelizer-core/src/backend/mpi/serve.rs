//! The region protocol between the ranks, on the control communicator.
//!
//! - **Dispatch** (served model): rank 0 broadcasts a header `[kind, task
//!   id, config length, payload length]` with a non-blocking broadcast that
//!   idle workers poll (so they sleep instead of spinning in MPI), then the
//!   payload, if any: main's encoded configuration (only when it differs
//!   from the last region's, which the workers keep; length 0 otherwise)
//!   followed by the encoded arguments. A region with the same
//!   configuration and no arguments is one small broadcast. Kind
//!   [`REGION`] runs the task on every rank; kind [`SHUTDOWN`] (from rank
//!   0's exit handler) ends the workers' loop.
//! - **Settle** (every region, served or SPMD): each rank runs its part with
//!   panics caught, then the ranks agree on how the region ended (`fate.rs`:
//!   with ULFM the job survives any failure, without it a failed rank that
//!   the others cannot join aborts the job).
//! - **Serving**: the worker hook makes ranks other than 0 of a served job
//!   run [`serve`], which builds one handle per configuration it receives
//!   and runs what rank 0 dispatches until the shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::fate::CTRL_LIMIT;
use super::handles::byte_type;
use super::world::{self, World};
use super::{Mpi, Role, announce, calls, protocol_error};
use crate::config::Config;
use crate::entry::WorkerHook;
use crate::error::{Error, Result};
use crate::msg::{Encoding, Msg, decode_serde, encode_serde};
use crate::parallelizer::{Parallelizer, Region};
use crate::task::task_by_id;

/// Dispatch kinds (first word of the dispatch header).
const SHUTDOWN: u64 = 0;
const REGION: u64 = 1;

/// Whether ranks other than 0 serve tasks that rank 0 dispatches
/// (`#[parallelizer::main]` under an MPI launcher).
static SERVED: AtomicBool = AtomicBool::new(false);
/// Whether rank 0 has told the serving workers to stop.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);
/// Served main: the encoded configuration the workers received last.
static LAST_CONFIG: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// Whether this process is part of a served job.
pub(super) fn served() -> bool {
    SERVED.load(Ordering::SeqCst)
}

impl Mpi {
    /// Served main: sends `region` to the workers, then runs its own part.
    pub(super) fn dispatch(&self, region: Region) -> Result<Msg> {
        // One region at a time in this process, whichever handle runs it.
        static DISPATCH: Mutex<()> = Mutex::new(());
        let _one = DISPATCH.lock().unwrap_or_else(|e| e.into_inner());
        let task_id = region.task().require_id()?;
        let (task, args) = region.into_parts();
        let config = match self.wire_config.get() {
            Some(bytes) => bytes,
            None => {
                let mut bytes = Vec::new();
                encode_serde(self.core.config(), &mut bytes)?;
                self.wire_config.get_or_init(|| bytes)
            }
        };
        // The workers keep the configuration of the last region: it is sent
        // again only when it changed (a header word of 0 says "the same").
        let same = {
            let mut last = LAST_CONFIG.lock().unwrap_or_else(|e| e.into_inner());
            let same = last.as_deref() == Some(&config[..]);
            if !same {
                *last = Some(config.clone());
            }
            same
        };
        let mut payload = Vec::new();
        if !same {
            payload.extend_from_slice(config);
        }
        let config_len = payload.len() as u64;
        args.encode_into(&mut payload)?;
        let ctrl = self.world.ctrl();
        let header = [REGION, u64::from(task_id), config_len, payload.len() as u64];
        announce::announce(ctrl, &header)?;
        if !payload.is_empty() {
            calls::bcast(ctrl, byte_type(), &mut payload, 0, CTRL_LIMIT)?;
        }
        self.run_settled(|| task.run_here(self, args))
    }
}

/// Rank 0 of a served job tells the workers to stop (once); registered to
/// run before `MPI_Finalize`.
fn shutdown_workers(world: &World) {
    if SHUT_DOWN.swap(true, Ordering::SeqCst) {
        return;
    }
    if let Err(e) = announce::announce(world.ctrl(), &[SHUTDOWN, 0, 0, 0]) {
        world::say(format_args!(
            "parallelizer: rank 0 could not shut the MPI workers down: {e}"
        ));
    }
}

/// The start of a top-level SPMD region: every rank says it is here, and
/// learns whether some rank has already left `main` (see [`leave`]), which
/// would leave the others blocked in the region's first collective.
pub(super) fn enter_spmd(world: &World) -> Result<()> {
    if world.size() == 1 {
        return Ok(());
    }
    // [0 = here, MAX = not leaving]; the minimum over the ranks says
    // whether anyone is here and which rank left first.
    let got = super::agree::agree_min(world.ctrl(), [0, u64::MAX], None)?
        .expect("no deadline: polled to completion");
    match got[1] {
        u64::MAX => Ok(()),
        rank => Err(Error::ContractViolation(format!(
            "rank {rank} returned from main before this region: in SPMD mode every rank \
             must run the same regions (rank {rank} never joins this one)"
        ))),
    }
}

/// The exit of an SPMD rank (before `MPI_Finalize`): it takes the place of
/// this rank in the entry of every region the others still start (so they
/// fail at once with an error naming it instead of blocking), until every
/// rank is leaving.
pub(super) fn leave(world: &World) {
    if world.size() == 1 || world::regions() > 0 {
        return;
    }
    let rank = world.rank() as u64;
    loop {
        match super::agree::agree_min(world.ctrl(), [1, rank], None) {
            // Everyone is leaving.
            Ok(Some(got)) if got[0] == 1 => return,
            Ok(_) => continue,
            Err(e) => {
                if world.faults.is_ulfm() {
                    // A rank failed and revoked the control communicator:
                    // MPI_Finalize could wait for it for ever, so it is
                    // skipped (see `world::at_exit`).
                    world.lost.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                world::say(format_args!(
                    "parallelizer: MPI rank {rank} could not leave the job cleanly: {e}"
                ));
                return;
            }
        }
    }
}

/// Whether an MPI launcher started this process.
fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MV2_COMM_WORLD_SIZE",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// The worker hook: under an MPI launcher with more than one rank, every
/// rank joins MPI; rank 0 returns to run `main`, the others serve.
fn serve_hook() -> Option<i32> {
    if !launched_by_mpi() || std::env::var("PARALLELIZER_MPI_SERVE").is_ok_and(|v| v == "0") {
        return None;
    }
    if std::env::var_os("PARALLELIZER_PROCESSES_LAUNCH").is_some() {
        // A worker of the processes backend started from an MPI rank
        // inherits the launcher's variables but is no MPI process.
        return None;
    }
    let world = match world::world() {
        Ok(w) => w,
        Err(e) => {
            world::say(format_args!("parallelizer: cannot join the MPI job: {e}"));
            return Some(1);
        }
    };
    if world.size() == 1 {
        return None;
    }
    SERVED.store(true, Ordering::SeqCst);
    if world.rank() == 0 {
        world::set_served_main();
        world::before_finalize(shutdown_workers);
        return None;
    }
    Some(serve(world))
}

inventory::submit! {
    WorkerHook { serve: serve_hook }
}

/// A worker: the body of `len` bytes after a dispatch header (broadcast
/// only when there is one).
fn body(world: &World, len: u64) -> Result<Vec<u8>> {
    let len = usize::try_from(len)
        .map_err(|_| protocol_error(format!("a dispatch body of {len} bytes")))?;
    let mut payload = vec![0u8; len];
    if len > 0 {
        calls::bcast(world.ctrl(), byte_type(), &mut payload, 0, CTRL_LIMIT)?;
    }
    Ok(payload)
}

/// The loop of a serving worker: run what rank 0 dispatches until it shuts
/// the job down.
fn serve(world: &'static World) -> i32 {
    let fatal = |e: Error| -> ! { world::report_and_abort(world, &format!("serving: {e}"), 1) };
    // Handles by main's encoded configuration (each may own a thread pool);
    // the last one is the configuration a header without one means.
    let mut handles: Vec<(Vec<u8>, Arc<Mpi>)> = Vec::new();
    let mut last: Option<Arc<Mpi>> = None;
    loop {
        let header = announce::await_header(world.ctrl()).unwrap_or_else(|e| fatal(e));
        match header[0] {
            // No body follows a shutdown.
            SHUTDOWN => return 0,
            REGION => {}
            other => fatal(protocol_error(format!("unknown dispatch kind {other}"))),
        }
        let mut payload = body(world, header[3]).unwrap_or_else(|e| fatal(e));
        let config_len = usize::try_from(header[2])
            .ok()
            .filter(|&n| n <= payload.len())
            .unwrap_or_else(|| {
                fatal(protocol_error(format!(
                    "dispatch header claims {} configuration bytes of {}",
                    header[2],
                    payload.len()
                )))
            });
        let args = payload.split_off(config_len);
        let known = handles.iter().find(|(bytes, _)| *bytes == payload);
        let handle = match (config_len, known, &last) {
            (0, _, Some(handle)) => handle.clone(),
            (0, _, None) => fatal(protocol_error(
                "a region without a configuration came first".into(),
            )),
            (_, Some((_, handle)), _) => handle.clone(),
            (_, None, _) => {
                let built = decode_serde::<Config>(&payload)
                    .and_then(|config| Mpi::with_role(config, world, Role::Worker));
                match built {
                    Ok(mpi) => {
                        let handle = Arc::new(mpi);
                        let as_dyn: Arc<dyn Parallelizer> = handle.clone();
                        handle
                            .core
                            .bind(Arc::downgrade(&as_dyn), crate::runtime::next_uid());
                        if handles.len() == 16 {
                            handles.remove(0);
                        }
                        handles.push((payload, handle.clone()));
                        handle
                    }
                    // Main built the same configuration, so this cannot
                    // happen short of different binaries.
                    Err(e) => fatal(e),
                }
            }
        };
        last = Some(handle.clone());
        let task = header[1] as u32;
        // A failure was agreed with main, which reports it.
        let _ = handle.run_settled(|| {
            let entry = task_by_id(task)?;
            let traced = crate::trace::region(entry.path, "mpi", world.rank(), world.size());
            let done = entry
                .invoke(&*handle, Msg::from_bytes(Encoding::Serde, args))
                .map(|()| Msg::local(()));
            traced.end(&done);
            done
        });
    }
}
