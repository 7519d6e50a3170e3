#[parallelizer::parallelizer]
struct Nameless;

#[parallelizer::parallelizer(crate = "::parallelizer")]
struct StillNameless;

fn main() {}
