use parallelizer::Parallelizer;

// A form the signature does not have.
#[parallelizer::task(map_with)]
fn no_extra(x: u32) -> u32 {
    x
}

#[parallelizer::task(map_chunks)]
fn two_items(a: u32, b: u32) -> u32 {
    a + b
}

#[parallelizer::task(starmap)]
fn extra_but_no_with(a: u32, b: &u32) -> u32 {
    a + b
}

// A map form on a region task.
#[parallelizer::task(map)]
fn region(_par: &dyn Parallelizer, _n: u32) {}

// Forms take no value, and are named once.
#[parallelizer::task(map = true)]
fn valued(x: u32) -> u32 {
    x
}

#[parallelizer::task(map, map)]
fn twice(x: u32) -> u32 {
    x
}

// A misspelled form.
#[parallelizer::task(mapchunks)]
fn misspelled(xs: Vec<u32>) -> Vec<u32> {
    xs
}

fn main() {}
