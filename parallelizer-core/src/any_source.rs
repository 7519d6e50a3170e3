//! What a backend offers maps that hand out chunks as ranks finish them:
//! whether it can receive from whichever rank sends first, and whether its
//! sends may wait for the receiver, or can be posted without waiting
//! (which decides how many chunks main may have in flight per rank).

/// What a backend offers maps that hand out chunks as ranks finish them
/// ([`Parallelizer::any_source`](crate::Parallelizer::any_source)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnySource {
    /// No receive from any rank: maps split the data statically (one
    /// contiguous chunk per rank, as `scatter` does), whatever they ask.
    Unsupported,
    /// [`recv_any_msg`](crate::Parallelizer::recv_any_msg) works, and a
    /// send may wait until the receiver takes the message (MPI's rendezvous): main keeps one chunk
    /// in flight per rank, so that it never waits in a send to a rank that
    /// waits in a send to main.
    Unbuffered,
    /// [`recv_any_msg`](crate::Parallelizer::recv_any_msg) works, and
    /// sends never wait for the receiver (the region protocol's transports): main may queue a rank's
    /// next chunk before it finishes the current one.
    Buffered,
    /// [`recv_any_msg`](crate::Parallelizer::recv_any_msg) works, and a
    /// send may wait until the receiver takes the message, but
    /// [`post_msg`](crate::Parallelizer::post_msg) does not (MPI's
    /// `MPI_Isend`): a map posts its chunks and results, and main may queue
    /// a rank's next chunk before it finishes the current one.
    Posted,
}
