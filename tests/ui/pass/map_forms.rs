// Every map form with a registered fn, pool-style: the registration is
// found from the fn for each call it serves.
use parallelizer::{Error, Schedule};

#[parallelizer::task]
fn square(x: u64) -> u64 {
    x * x
}

#[parallelizer::task]
fn scaled(x: u64, k: &u64) -> u64 {
    x * k
}

#[parallelizer::task]
fn plus_one(xs: Vec<u64>) -> Vec<u64> {
    xs.into_iter().map(|x| x + 1).collect()
}

#[parallelizer::task]
fn plus(xs: Vec<u64>, k: &u64) -> Vec<u64> {
    xs.into_iter().map(|x| x + k).collect()
}

#[parallelizer::task]
fn product(a: u64, b: u64) -> u64 {
    a * b
}

#[parallelizer::task]
fn label(i: u64, name: String, sep: &String) -> String {
    format!("{name}{sep}{i}")
}

type Batch = Vec<f32>;

#[parallelizer::task(map_chunks)]
fn halves(xs: Batch) -> Batch {
    xs.into_iter().map(|x| x / 2.0).collect()
}

fn entry_of<F>(_: F) -> &'static parallelizer::backend::TaskEntry {
    parallelizer::backend::task_of::<F>().expect("registered")
}

#[parallelizer::main]
fn main() -> Result<(), Error> {
    use parallelizer::backend::MapForm;
    let par = parallelizer::from_config("threads:2")?;
    let m = par.mapper().schedule(Schedule::Dynamic { chunksize: 2 });
    assert_eq!(m.map(square, Some(vec![1, 2, 3]))?, Some(vec![1, 4, 9]));
    assert_eq!(m.map_with(scaled, Some(vec![1, 2]), Some(10))?, Some(vec![10, 20]));
    assert_eq!(m.map_chunks(plus_one, Some(vec![1, 2, 3]))?, Some(vec![2, 3, 4]));
    assert_eq!(m.map(plus_one, Some(vec![vec![1], vec![2, 3]]))?, Some(vec![vec![2], vec![3, 4]]));
    assert_eq!(m.map_chunks_with(plus, Some(vec![1, 2]), Some(5))?, Some(vec![6, 7]));
    assert_eq!(m.starmap(product, Some(vec![(2, 3), (4, 5)]))?, Some(vec![6, 20]));
    let got = m.starmap_with(label, Some(vec![(1, "a".into())]), Some(":".to_string()))?;
    assert_eq!(got, Some(vec!["a:1".to_string()]));
    assert_eq!(m.map_chunks(halves, Some(vec![1.0, 3.0]))?, Some(vec![0.5, 1.5]));
    // What each registration serves.
    assert!(entry_of(plus_one).kind.serves(MapForm::Map));
    assert!(entry_of(plus_one).kind.serves(MapForm::MapChunks));
    assert!(entry_of(plus).kind.serves(MapForm::MapChunksWith));
    assert!(!entry_of(halves).kind.serves(MapForm::Map));
    assert!(entry_of(label).kind.serves(MapForm::StarmapWith));
    // This file's seven fns (the framework registers tasks of its own).
    let ours = parallelizer::backend::tasks()
        .iter()
        .filter(|t| !t.path.starts_with("parallelizer_core::"))
        .count();
    assert_eq!(ours, 7);
    Ok(())
}
