#[parallelizer::main]
fn start() {}

fn main() {}
