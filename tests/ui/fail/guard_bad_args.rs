use parallelizer::{main_restricted, worker_restricted, Parallelizer};

#[main_restricted(rank = 0)]
fn unknown_key() {}

#[worker_restricted(par = get(), par = get())]
fn par_twice() {}

#[main_restricted(par = get())]
fn both(#[par] _p: &dyn Parallelizer) {}

fn get() -> std::sync::Arc<dyn Parallelizer> {
    parallelizer::get_default()
}

fn main() {}
