//! A rank's mailboxes: the data packets that arrived and are not taken
//! yet, by group (message namespace), kind of call and sender.

use std::collections::{HashMap, VecDeque};

use crate::op::{Op, Tag};

use super::packet::Packet;

/// One group's packets, by sender.
struct Boxes {
    /// Collective packets.
    coll: Vec<VecDeque<Packet>>,
    /// Point-to-point packets.
    p2p: Vec<VecDeque<Packet>>,
}

impl Boxes {
    fn new(nprocs: usize) -> Boxes {
        let queues = || (0..nprocs).map(|_| VecDeque::new()).collect::<Vec<_>>();
        Boxes {
            coll: queues(),
            p2p: queues(),
        }
    }

    /// The queue of packets of kind `tag` from `from`.
    fn queue(&mut self, from: usize, tag: Tag) -> &mut VecDeque<Packet> {
        if tag.is_p2p() {
            &mut self.p2p[from]
        } else {
            &mut self.coll[from]
        }
    }

    /// The next packet from `from` for a call `tag`: collective packets in
    /// order; point-to-point ones the first whose operation is `tag`'s
    /// [`counterpart`].
    fn take(&mut self, from: usize, tag: Tag) -> Option<Packet> {
        if !tag.is_p2p() {
            return self.coll[from].pop_front();
        }
        let want = counterpart(tag.op());
        let queue = &mut self.p2p[from];
        let at = queue.iter().position(|p| p.tag().op() == want)?;
        queue.remove(at)
    }

    /// Whether no packet waits in any of them.
    fn is_empty(&self) -> bool {
        self.coll.iter().chain(&self.p2p).all(VecDeque::is_empty)
    }
}

/// The point-to-point operation whose messages a call of `op` takes: a
/// `receive` takes what a `send` sent, and a `send` waiting for its
/// receiver (a lent buffer) the `receive`'s acknowledgement.
pub(super) fn counterpart(op: Op) -> Op {
    match op {
        Op::Send => Op::Receive,
        _ => Op::Send,
    }
}

/// Every group's mailboxes: the region's own (group 0), and one set per
/// group made inside the region, made by its first packet and forgotten
/// once empty (SPMD's ambient region lasts as long as the program, and
/// every `split` makes new groups).
pub(super) struct Mailboxes {
    nprocs: usize,
    region: Boxes,
    groups: HashMap<u64, Boxes>,
}

impl Mailboxes {
    /// Empty mailboxes for packets from `nprocs` ranks.
    pub(super) fn new(nprocs: usize) -> Mailboxes {
        Mailboxes {
            nprocs,
            region: Boxes::new(nprocs),
            groups: HashMap::new(),
        }
    }

    /// Files a data packet from `from` (a rank below `nprocs`).
    pub(super) fn push(&mut self, from: usize, packet: Packet) {
        let (group, tag) = (packet.group(), packet.tag());
        let boxes = match group {
            0 => &mut self.region,
            g => {
                let nprocs = self.nprocs;
                self.groups.entry(g).or_insert_with(|| Boxes::new(nprocs))
            }
        };
        boxes.queue(from, tag).push_back(packet);
    }

    /// The next packet of group `group` from `from` for a call `tag` (see
    /// [`Boxes::take`]).
    pub(super) fn pop(&mut self, group: u64, from: usize, tag: Tag) -> Option<Packet> {
        if group == 0 {
            return self.region.take(from, tag);
        }
        let boxes = self.groups.get_mut(&group)?;
        let packet = boxes.take(from, tag);
        if boxes.is_empty() {
            self.groups.remove(&group);
        }
        packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Msg;

    #[test]
    fn groups_apart_by_kind_and_sender_and_forgotten_once_empty() {
        let mut boxes = Mailboxes::new(3);
        let (gather, send) = (Tag::new(Op::Gather, 0), Tag::p2p(Op::Send));
        let receive = Tag::p2p(Op::Receive);
        let packet = |tag, n: u8, group| Packet::data(1, tag, Msg::new(n)).in_group(group);
        boxes.push(2, packet(gather, 1, 7));
        boxes.push(2, packet(gather, 2, 7));
        boxes.push(2, packet(send, 3, 7));
        boxes.push(2, packet(gather, 4, 0));
        boxes.push(1, packet(gather, 5, 9));
        let mut take = |group, from, tag| {
            let p = boxes.pop(group, from, tag)?;
            Some((p.group(), p.into_body().into_value::<u8>().unwrap()))
        };
        assert_eq!(take(7, 1, gather), None);
        assert_eq!(take(7, 2, gather), Some((7, 1)));
        assert_eq!(take(0, 2, gather), Some((0, 4)));
        assert_eq!(take(7, 2, send), None, "a send takes acknowledgements only");
        assert_eq!(take(7, 2, receive), Some((7, 3)));
        assert_eq!(take(7, 2, gather), Some((7, 2)));
        assert_eq!(boxes.groups.len(), 1, "group 7 is empty");
        assert_eq!(boxes.pop(9, 1, gather).map(|p| p.group()), Some(9));
        assert!(boxes.groups.is_empty() && boxes.pop(9, 1, gather).is_none());
    }
}
