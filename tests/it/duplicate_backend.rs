//! Two structs registered under one mode name: an error at first use that
//! names both types, never a silent pick.

use parallelizer::backend::{Core, FromConfig, Msg, Region};
use parallelizer::{Config, Error, Parallelizer, Result};

macro_rules! one_rank_backend {
    ($name:ident) => {
        impl FromConfig for $name {
            fn from_config(config: &Config) -> Result<Self> {
                Ok($name {
                    core: Core::new(config.clone()),
                })
            }
        }
        impl Parallelizer for $name {
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
    };
}

mod first {
    use super::*;

    #[parallelizer::parallelizer(name = "twice")]
    pub struct Alpha {
        core: Core,
    }
    one_rank_backend!(Alpha);
}

mod second {
    use super::*;

    #[parallelizer::parallelizer(name = "twice")]
    pub struct Beta {
        core: Core,
    }
    one_rank_backend!(Beta);
}

#[test]
fn duplicate_name_is_an_error_naming_both() {
    let err = parallelizer::from_config("twice").unwrap_err();
    let Error::Config(message) = &err else {
        panic!("expected a config error, got {err}");
    };
    assert!(
        message.contains("duplicate_backend::first::Alpha"),
        "{message}"
    );
    assert!(
        message.contains("duplicate_backend::second::Beta"),
        "{message}"
    );
    assert!(message.contains("`twice`"), "{message}");
    // The other modes are unaffected, and the name is listed once.
    assert_eq!(
        parallelizer::from_config("serial").unwrap().mode(),
        "serial"
    );
    let modes = parallelizer::modes();
    assert_eq!(modes.iter().filter(|m| *m == "twice").count(), 1);
    // lookup falls back to the default instead of picking one.
    assert_eq!(parallelizer::lookup("twice").mode(), "serial");
}
