#[parallelizer::parallelizer(name = "f")]
fn not_a_backend() {}

fn main() {}
