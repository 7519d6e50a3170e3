//! The data frames a rank received and has not taken yet: one queue per
//! sender, one set of queues per message namespace (the region's own, and
//! each group's made inside it).

use std::collections::{HashMap, VecDeque};

use super::frame::Frame;

/// Frames by namespace and sender.
pub(super) struct Inboxes {
    /// The region's own frames (group 0), by sender.
    region: Vec<VecDeque<Frame>>,
    /// The frames of groups made inside a region, by group id and sender.
    groups: HashMap<u64, Vec<VecDeque<Frame>>>,
}

impl Inboxes {
    /// Empty inboxes for `nprocs` senders.
    pub(super) fn new(nprocs: usize) -> Inboxes {
        Inboxes {
            region: (0..nprocs).map(|_| VecDeque::new()).collect(),
            groups: HashMap::new(),
        }
    }

    /// The queue of frames of group `group` (0: the region's own) from
    /// `from`.
    pub(super) fn queue(&mut self, group: u64, from: usize) -> &mut VecDeque<Frame> {
        if group == 0 {
            return &mut self.region[from];
        }
        let n = self.region.len();
        &mut self
            .groups
            .entry(group)
            .or_insert_with(|| (0..n).map(|_| VecDeque::new()).collect())[from]
    }

    /// Drops the frames of regions before `region`, and the groups left
    /// empty (a group lives in one region).
    pub(super) fn drop_before(&mut self, region: u64) {
        for q in &mut self.region {
            q.retain(|f| f.header().region() >= region);
        }
        self.groups.retain(|_, queues| {
            for q in queues.iter_mut() {
                q.retain(|f| f.header().region() >= region);
            }
            queues.iter().any(|q| !q.is_empty())
        });
    }
}
