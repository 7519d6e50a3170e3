#[parallelizer::parallelizer(name = "a", nprocs = 4)]
struct UnknownKey;

#[parallelizer::parallelizer(name = "b", name = "c")]
struct TwoNames;

fn main() {}
