//! Point-to-point: `send` and `receive`, serde and plain data.

use crate::error::{Error, Result};
use crate::msg::{Data, Msg};
use crate::op::{Op, Tag};
use crate::parallelizer::Parallelizer;

impl dyn Parallelizer {
    /// Sends `value` to rank `to`; pairs with `receive` there.
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:3").unwrap();
    /// let got = par.run(|p: &dyn Parallelizer, ()| match p.id() {
    ///     1 => { p.send(String::from("hi from 1"), 2).unwrap(); None }
    ///     2 => Some(p.receive::<String>(1).unwrap()),
    ///     _ => None,
    /// }, ()).unwrap();
    /// assert_eq!(got, None); // main's result; rank 2 got the string
    /// ```
    pub fn send<T: Data>(&self, value: T, to: usize) -> Result<()> {
        self.send_checked(Msg::new(value), to)
    }

    /// Receives the next value rank `from` sent to this rank.
    pub fn receive<T: Data>(&self, from: usize) -> Result<T> {
        self.receive_checked(from)?.into_value()
    }

    /// `send` of plain data as raw bytes, no codec (mpi4py's `Send`).
    ///
    /// ```
    /// use parallelizer_core::{from_config, Parallelizer};
    /// let par = from_config("threads:2").unwrap();
    /// let got = par.run(|p: &dyn Parallelizer, ()| {
    ///     if p.on_main() { p.send_pod(vec![1.5f64; 4], 1).unwrap(); None }
    ///     else { Some(p.receive_pod::<f64>(0).unwrap()) }
    /// }, ()).unwrap();
    /// assert_eq!(got, None); // rank 1 got [1.5; 4]
    /// ```
    pub fn send_pod<T: bytemuck::Pod + Send>(&self, data: Vec<T>, to: usize) -> Result<()> {
        self.send_checked(Msg::pod(data), to)
    }

    /// Receives plain data sent with `send_pod` (mpi4py's `Recv`).
    pub fn receive_pod<T: bytemuck::Pod + Send>(&self, from: usize) -> Result<Vec<T>> {
        self.receive_checked(from)?.into_pod()
    }

    /// The prologue of every send, then the send.
    fn send_checked(&self, msg: Msg, to: usize) -> Result<()> {
        let tag = self.point_to_point(Op::Send, to)?;
        let bytes = msg.byte_len();
        self.traced(Op::Send, |_| bytes, || self.send_msg(msg, to, tag))
    }

    /// The prologue of every receive, then the receive.
    fn receive_checked(&self, from: usize) -> Result<Msg> {
        let tag = self.point_to_point(Op::Receive, from)?;
        self.traced(Op::Receive, Msg::byte_len, || self.recv_msg(from, tag))
    }

    /// The prologue of point-to-point calls: a peer that is another rank of
    /// this parallelizer, the contract, a region; the messages' tag. The
    /// checks of [`prologue`](Self::prologue) in the same order, each
    /// property of the handle asked once (the smallest calls pay for every
    /// question).
    #[inline]
    pub(super) fn point_to_point(&self, op: Op, peer: usize) -> Result<Tag> {
        let (id, nprocs) = (self.id(), self.nprocs());
        if peer >= nprocs {
            return Err(Error::InvalidRank { rank: peer, nprocs });
        }
        if peer == id {
            return Err(to_itself(op, peer));
        }
        // Two ranks at least (`peer` and this one): the call pairs up.
        let core = self.core();
        core.check_contract(id, op.name())?;
        self.require_region(op)?;
        Ok(core.next_tag(op))
    }
}

/// The error of a rank's point-to-point call `op` to itself; out of line,
/// so that the calls stay small.
#[cold]
#[inline(never)]
fn to_itself(op: Op, peer: usize) -> Error {
    Error::ContractViolation(format!(
        "rank {peer} tried to {op} itself; point-to-point needs two ranks"
    ))
}
