// The one minimal backend of the test support: a single rank that runs a
// region in place and has no peer to talk to (it keeps the trait's default
// `send_msg`/`recv_msg`). Included with `#[path]` (not through
// `common/mod.rs`) by everything that needs "some backend" to register:
// `tests/registry/duplicate_backend.rs`, the fixture crate
// `tests/fixtures/linked-crate` and the trybuild pass case
// `tests/ui/pass/crate_override.rs`, so it names only the facade's API.
//
// ```ignore
// #[macro_use]
// #[path = "../common/one_rank.rs"]
// mod one_rank;
//
// one_rank_backend! {
//     /// Docs and attributes are kept.
//     #[parallelizer::parallelizer(name = "solo")]
//     pub struct Solo;
// }
// // Through a renamed facade (`extern crate parallelizer as renamed;`):
// one_rank_backend! { renamed: #[renamed::parallelizer(name = "r")] struct R; }
// ```
//
// Comments, not docs: a `#[path]` module's inner doc would document the
// module it is included as, in crates that deny missing docs.

/// Defines `struct $name { core: Core }` with its attributes and a
/// one-rank `FromConfig` + `Parallelizer` for it, through the facade crate
/// named `$krate` (default `parallelizer`).
macro_rules! one_rank_backend {
    ($(#[$attr:meta])* $vis:vis struct $name:ident;) => {
        one_rank_backend!(parallelizer: $(#[$attr])* $vis struct $name;);
    };
    ($krate:ident: $(#[$attr:meta])* $vis:vis struct $name:ident;) => {
        $(#[$attr])*
        $vis struct $name {
            core: $krate::backend::Core,
        }

        impl $krate::backend::FromConfig for $name {
            fn from_config(config: &$krate::Config) -> $krate::Result<Self> {
                Ok($name {
                    core: $krate::backend::Core::new(config.clone()),
                })
            }
        }

        impl $krate::Parallelizer for $name {
            fn core(&self) -> &$krate::backend::Core {
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
            fn run_region(&self, region: $krate::backend::Region) -> $krate::Result<$krate::backend::Msg> {
                region.run_on(self)
            }
        }
    };
}
