use parallelizer::Parallelizer;

struct Opaque;

// A worker reports a task's `Err` with `Display`.
#[parallelizer::task]
fn fails(_par: &dyn Parallelizer, _n: u32) -> Result<u32, Opaque> {
    Err(Opaque)
}

fn main() {}
