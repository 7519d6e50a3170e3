// `crate = "path"`: generated code reaches the runtime through a renamed or
// re-exported path only.
extern crate parallelizer as renamed;

mod reexport {
    pub use renamed::*;
}

use renamed::Parallelizer;

// The test support's one-rank backend, written against `renamed::`; the
// registration under test is the attribute.
#[macro_use]
#[path = "../../common/one_rank.rs"]
mod one_rank;

one_rank_backend! {
    renamed: #[renamed::parallelizer(name = "renamed", crate = "::renamed")]
    struct Solo;
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
