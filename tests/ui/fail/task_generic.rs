use parallelizer::Parallelizer;

#[parallelizer::task]
fn generic<T: std::fmt::Debug>(_par: &dyn Parallelizer, _x: T) {}

#[parallelizer::task]
fn impl_arg(x: impl Into<u32>) -> u32 {
    x.into()
}

fn main() {}
