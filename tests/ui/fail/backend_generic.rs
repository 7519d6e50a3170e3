#[parallelizer::parallelizer(name = "generic")]
struct Generic<T> {
    inner: T,
}

fn main() {}
