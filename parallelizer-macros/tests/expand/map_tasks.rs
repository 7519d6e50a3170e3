/// `map_with`: the item, then the extra argument by reference.
#[parallelizer::task]
fn scaled(x: f64, k: &f64) -> f64 {
    x * k
}

/// `Vec<T> -> Vec<R>` serves `map` (items that are vectors) and `map_chunks`.
#[parallelizer::task]
fn shifted(xs: Vec<i32>) -> Vec<i32> {
    xs.into_iter().map(|x| x + 1).collect()
}

/// `map_chunks_with` (and `map_with` over vector items).
#[parallelizer::task]
fn offset(xs: Vec<i32>, by: &i32) -> Vec<i32> {
    xs.into_iter().map(|x| x + by).collect()
}

/// `starmap`: one parameter per tuple field.
#[parallelizer::task]
fn product(a: u64, b: u64) -> u64 {
    a * b
}

/// `starmap_with`: the fields, then the extra argument.
#[parallelizer::task]
fn labelled(i: u32, name: String, prefix: &String) -> String {
    format!("{prefix}{name}{i}")
}

type Batch = Vec<f32>;

/// Forms named explicitly: a type alias hides the `Vec` from the attribute.
#[parallelizer::task(map_chunks)]
fn halves(xs: Batch) -> Batch {
    xs.into_iter().map(|x| x / 2.0).collect()
}
