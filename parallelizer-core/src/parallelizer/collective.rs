//! Collectives built from point-to-point messages, the defaults of
//! [`Parallelizer`]; a backend with native collectives overrides them.

use super::*;

/// Main sends a copy to every worker (cloned, or serialized once).
pub fn broadcast<P: Parallelizer + ?Sized>(par: &P, msg: Option<Msg>, tag: Tag) -> Result<Msg> {
    if !par.on_main() {
        return par.recv_msg(0, tag);
    }
    let msg = msg.ok_or_else(|| missing(tag.op()))?;
    for rank in 1..par.nprocs() {
        par.send_msg(msg.duplicate()?, rank, tag)?;
    }
    Ok(msg)
}

/// Main sends chunk `i` to rank `i` and keeps chunk 0.
pub fn scatter<P: Parallelizer + ?Sized>(
    par: &P,
    chunks: Option<Vec<Msg>>,
    tag: Tag,
) -> Result<Msg> {
    if !par.on_main() {
        return par.recv_msg(0, tag);
    }
    let chunks = chunks.ok_or_else(|| missing(tag.op()))?;
    if chunks.len() != par.nprocs() {
        return Err(Error::ContractViolation(format!(
            "scatter needs one chunk per rank: {} chunks for {} ranks",
            chunks.len(),
            par.nprocs()
        )));
    }
    let mut chunks = chunks.into_iter();
    let own = chunks.next().expect("nprocs >= 1");
    for (rank, chunk) in chunks.enumerate() {
        par.send_msg(chunk, rank + 1, tag)?;
    }
    Ok(own)
}

/// Workers send to main; main receives in rank order.
pub fn gather<P: Parallelizer + ?Sized>(par: &P, msg: Msg, tag: Tag) -> Result<Option<Vec<Msg>>> {
    if !par.on_main() {
        par.send_msg(msg, 0, tag)?;
        return Ok(None);
    }
    let mut all = Vec::with_capacity(par.nprocs());
    all.push(msg);
    for rank in 1..par.nprocs() {
        all.push(par.recv_msg(rank, tag)?);
    }
    Ok(Some(all))
}

/// Dissemination barrier (Hensgen, Finkel and Manber): in round `k` every
/// rank sends a token to the rank `2^k` after it and waits for the one from
/// the rank `2^k` before it. After `⌈log2 P⌉` rounds each rank has heard,
/// directly or not, from every other, and all leave together: a gather then
/// a broadcast takes two hops and lets main leave a hop before the workers,
/// which then start the next call late. Each ordered pair of ranks is used
/// in one round only, so a fast rank's next barrier cannot be mistaken for
/// this one.
pub fn barrier<P: Parallelizer + ?Sized>(par: &P, tag: Tag) -> Result<()> {
    let (id, nprocs) = (par.id(), par.nprocs());
    let mut distance = 1;
    while distance < nprocs {
        par.send_msg(Msg::new(()), (id + distance) % nprocs, tag)?;
        par.recv_msg((id + nprocs - distance) % nprocs, tag)?;
        distance *= 2;
    }
    Ok(())
}

/// The peers of `par` for the algorithms of [`crate::tree`], every
/// message tagged `tag`, handed to `f`.
fn with_peers<P: Parallelizer + ?Sized, R>(
    par: &P,
    tag: Tag,
    exchange: Option<&crate::tree::Exchange<'_>>,
    f: impl FnOnce(&crate::tree::Peers<'_>) -> R,
) -> R {
    let send = |m: Msg, to: usize| par.send_msg(m, to, tag);
    let recv = |from: usize| par.recv_msg(from, tag);
    f(&crate::tree::Peers {
        id: par.id(),
        nprocs: par.nprocs(),
        send: &send,
        recv: &recv,
        exchange,
    })
}

/// Binomial-tree reduction to main.
pub fn reduce<P: Parallelizer + ?Sized>(
    par: &P,
    msg: Msg,
    combine: &Combine<'_>,
    tag: Tag,
) -> Result<Option<Msg>> {
    with_peers(par, tag, None, |p| crate::tree::reduce(p, msg, combine))
}

/// Recursive-doubling all-reduce.
pub fn allreduce<P: Parallelizer + ?Sized>(
    par: &P,
    msg: Msg,
    combine: &Combine<'_>,
    tag: Tag,
) -> Result<Msg> {
    with_peers(par, tag, None, |p| crate::tree::allreduce(p, msg, combine))
}

/// [`allreduce`] whose pairs of ranks swap their values with `exchange`
/// (sends `mine` to the partner, returns the partner's), for a backend
/// that can lend the values rather than copy them.
pub(crate) fn allreduce_exchanging<P: Parallelizer + ?Sized>(
    par: &P,
    msg: Msg,
    combine: &Combine<'_>,
    tag: Tag,
    exchange: &crate::tree::Exchange<'_>,
) -> Result<Msg> {
    with_peers(par, tag, Some(exchange), |p| {
        crate::tree::allreduce(p, msg, combine)
    })
}

/// Hillis–Steele inclusive prefix.
pub fn scan<P: Parallelizer + ?Sized>(
    par: &P,
    msg: Msg,
    combine: &Combine<'_>,
    tag: Tag,
) -> Result<Msg> {
    with_peers(par, tag, None, |p| crate::tree::scan(p, msg, combine))
}

fn missing(op: Op) -> Error {
    Error::ContractViolation(format!(
        "main must pass Some(data) to {op}; workers pass None"
    ))
}
