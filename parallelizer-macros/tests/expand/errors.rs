// On error: the original item, then `compile_error!` (spans are shown by the
// trybuild snapshots in tests/ui/fail).
#[parallelizer(name = "colors")]
enum Colors {
    Red,
}

// The guard's fallback also drops the `#[par]` marker rustc does not know.
#[main_restricted]
async fn fetch(#[par] p: &Threads) -> u32 {
    1
}
