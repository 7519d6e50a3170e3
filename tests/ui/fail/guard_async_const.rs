use parallelizer::{main_restricted, worker_restricted, Parallelizer};

#[main_restricted]
async fn fetch(_par: &dyn Parallelizer) -> u32 {
    1
}

#[worker_restricted]
const fn constant() -> u32 {
    1
}

fn main() {}
