//! `serial`: one rank, the caller; every collective is the identity.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::msg::Msg;
use crate::op::Tag;
use crate::parallelizer::{Core, Parallelizer, Region};
use crate::registry::FromConfig;
use crate::runtime::set_current;
use crate::segment::{HEAP, SharedMemory};
use crate::task::initializer_region;

/// The serial fallback (McUtils `SerialNonParallelizer`): `nprocs() == 1`,
/// id 0, always main. Scatter returns all the data, gather `Some(vec![x])`.
///
/// ```
/// use parallelizer_core::{from_config, Parallelizer};
/// let par = from_config("serial").unwrap();
/// let got = par.run(|p: &dyn Parallelizer, x: i32| p.gather(p.scatter(Some(vec![x])).unwrap()).unwrap(), 7).unwrap();
/// assert_eq!(got, Some(vec![vec![7]]));
/// ```
#[derive(Debug)]
#[crate::parallelizer(name = "serial", crate = "crate")]
pub struct Serial {
    core: Core,
}

impl Serial {
    /// A serial parallelizer; `config.nprocs` must be unset or 1.
    pub fn new(config: Config) -> Serial {
        Serial {
            core: Core::new(config),
        }
    }
}

impl FromConfig for Serial {
    fn from_config(config: &Config) -> Result<Serial> {
        if config.nprocs.is_some_and(|n| n != 1) {
            return Err(Error::Config(format!(
                "`{config}`: serial has exactly 1 rank; use `threads:N` or `processes:N` for more"
            )));
        }
        config.options().finish()?;
        Ok(Serial::new(config.clone()))
    }
}

impl Parallelizer for Serial {
    fn core(&self) -> &Core {
        &self.core
    }
    fn id(&self) -> usize {
        0
    }
    fn nprocs(&self) -> usize {
        1
    }
    fn in_region(&self) -> bool {
        true
    }
    /// One rank: shared arrays are heap memory.
    fn shared_memory(&self) -> Result<&dyn SharedMemory> {
        Ok(&HEAP)
    }
    /// Runs the configured initializer once (McUtils' serial
    /// `initialize` runs `initialization_function`).
    fn initialize(&self) -> Result<()> {
        match initializer_region(self.core.config())? {
            Some(region) => self.run_region(region).map(drop),
            None => Ok(()),
        }
    }
    fn send_msg(&self, _: Msg, to: usize, _tag: Tag) -> Result<()> {
        Err(Error::InvalidRank {
            rank: to,
            nprocs: 1,
        })
    }
    fn recv_msg(&self, from: usize, _tag: Tag) -> Result<Msg> {
        Err(Error::InvalidRank {
            rank: from,
            nprocs: 1,
        })
    }
    fn run_region(&self, region: Region) -> Result<Msg> {
        let _current = self.core.this().map(set_current);
        let (task, args) = region.into_parts();
        task.run(self, args)
    }
    fn broadcast_msg(&self, msg: Option<Msg>, _tag: Tag) -> Result<Msg> {
        msg.ok_or_else(|| Error::ContractViolation("serial broadcast needs Some(data)".into()))
    }
    fn scatter_msg(&self, chunks: Option<Vec<Msg>>, _tag: Tag) -> Result<Msg> {
        chunks
            .and_then(|c| c.into_iter().next())
            .ok_or_else(|| Error::ContractViolation("serial scatter needs Some(data)".into()))
    }
    fn gather_msg(&self, msg: Msg, _tag: Tag) -> Result<Option<Vec<Msg>>> {
        Ok(Some(vec![msg]))
    }
    fn barrier(&self, _tag: Tag) -> Result<()> {
        Ok(())
    }
}
