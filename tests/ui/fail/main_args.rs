#[parallelizer::main]
fn main(_args: Vec<String>) {}
