//! Which machine this process runs on. A shared-memory token (a memfd
//! named by `/proc/PID/fd/FD`) only means something on the node that made
//! it, so tokens carry their node and a rank elsewhere refuses them by name
//! instead of opening whatever that path is on its own machine.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A node: its host name and the id of its current boot (two containers of
/// one kernel with their own host names count as two nodes; a host whose
/// kernel rebooted is another node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Node {
    host: String,
    boot: String,
}

/// Reads a one-line kernel file; empty where there is none (not Linux).
fn kernel_value(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// This process's node, read once.
pub(crate) fn this_node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| Node {
        host: kernel_value("/proc/sys/kernel/hostname"),
        boot: kernel_value("/proc/sys/kernel/random/boot_id"),
    })
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.is_empty() {
            f.write_str("an unnamed node")
        } else {
            write!(f, "node `{}`", self.host)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_node_is_stable_and_named() {
        let node = this_node();
        assert_eq!(node, this_node());
        if cfg!(target_os = "linux") {
            assert!(!node.host.is_empty() && !node.boot.is_empty(), "{node:?}");
            assert_eq!(node.to_string(), format!("node `{}`", node.host));
        }
        let other = Node {
            host: "elsewhere".into(),
            boot: node.boot.clone(),
        };
        assert_ne!(&other, node);
    }
}
