#[parallelizer::test]
#[test]
fn twice() {}

#[parallelizer::test]
async fn later() {}

#[parallelizer::test]
fn with_args(_x: u32) {}

#[parallelizer::test(timeout = 3)]
fn unknown_key() {}

fn main() {}
