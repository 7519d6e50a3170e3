#[parallelizer::task(crate = parallelizer)]
fn unquoted(x: u32) -> u32 {
    x
}

#[parallelizer::task(crate = "not a path")]
fn bad_path(x: u32) -> u32 {
    x
}

fn main() {}
