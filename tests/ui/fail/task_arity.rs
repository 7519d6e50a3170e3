use parallelizer::Parallelizer;

#[parallelizer::task]
fn nothing() {}

#[parallelizer::task]
fn three(_par: &dyn Parallelizer, _a: u32, _b: String) {}

fn main() {}
