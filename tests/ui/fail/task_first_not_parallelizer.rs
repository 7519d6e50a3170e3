use parallelizer::Parallelizer;

#[parallelizer::task]
fn swapped(_n: u32, _par: &dyn Parallelizer) {}

#[parallelizer::task]
fn owned(_par: std::sync::Arc<dyn Parallelizer>, _n: u32) {}

fn main() {}
