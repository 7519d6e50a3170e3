use parallelizer::{main_restricted, Parallelizer};

#[main_restricted]
fn unnamed(_: &dyn Parallelizer, x: u32) -> u32 {
    x
}

#[main_restricted]
fn never(_par: &dyn Parallelizer) -> ! {
    panic!()
}

fn main() {}
