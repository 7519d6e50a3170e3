#[parallelizer::main]
async fn main() {}
