// `crate = "path"`: generated code reaches the runtime through a renamed or
// re-exported path only.
extern crate parallelizer as renamed;

mod reexport {
    pub use renamed::*;
}

use renamed::backend::{Core, FromConfig, Msg, Region};
use renamed::{Config, Error, Parallelizer, Result};

#[renamed::parallelizer(name = "renamed", crate = "::renamed")]
struct Solo {
    core: Core,
}

impl FromConfig for Solo {
    fn from_config(config: &Config) -> Result<Solo> {
        Ok(Solo {
            core: Core::new(config.clone()),
        })
    }
}

impl Parallelizer for Solo {
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
    fn run_region(&self, region: Region) -> Result<Msg> {
        region.run_on(self)
    }
}

#[renamed::task(crate = "crate::reexport")]
fn add(par: &dyn Parallelizer, (a, b): (u32, u32)) -> u32 {
    let _ = par;
    a + b
}

#[renamed::main_restricted(crate = "crate::reexport")]
fn on_main() -> u32 {
    1
}

#[renamed::worker_restricted(crate = "::renamed", par = renamed::get_default())]
fn on_workers() -> u32 {
    2
}

#[renamed::main(crate = "crate::reexport")]
fn main() {
    let par = renamed::from_config("renamed").unwrap();
    assert_eq!(par.run(add, (2, 3)).unwrap(), 5);
    assert_eq!(on_main(), renamed::Restricted::Ran(1));
    assert_eq!(on_workers(), renamed::Restricted::InMainProcess);
}

#[renamed::test(crate = "::renamed")]
fn a_test() {}
