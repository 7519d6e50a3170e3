#[parallelizer::parallelizer(name = loopback)]
struct Ident;

#[parallelizer::parallelizer(name = 3)]
struct Number;

#[parallelizer::parallelizer(name = "threads:4")]
struct WithColon;

fn main() {}
