// Tasks of both shapes, run by `run` and `map`, from a `#[parallelizer::main]`
// that returns a `Result`.
use parallelizer::{Error, Parallelizer};

#[parallelizer::task]
fn pair(par: &dyn Parallelizer, (a, b): (u32, String)) -> Option<Vec<String>> {
    par.gather(format!("{b}{a}")).unwrap()
}

#[parallelizer::task]
fn fallible(_par: &dyn Parallelizer, n: u32) -> Result<u32, String> {
    Ok(n)
}

#[parallelizer::task]
fn unit(_par: &dyn Parallelizer, (): ()) {}

#[parallelizer::task]
fn triple(x: i64) -> i64 {
    3 * x
}

/// Docs and attributes are kept on tasks too.
#[parallelizer::task]
#[allow(clippy::needless_pass_by_value)]
pub fn documented(s: String) -> usize {
    s.len()
}

#[parallelizer::main]
fn main() -> Result<(), Error> {
    let par = parallelizer::from_config("threads:2")?;
    assert_eq!(par.run(pair, (1, "x".into()))?.unwrap(), ["x1", "x1"]);
    assert_eq!(par.run(fallible, 5)?, Ok(5));
    par.run(unit, ())?;
    assert_eq!(par.map(triple, Some(vec![1, 2]))?, Some(vec![3, 6]));
    assert_eq!(par.map(documented, Some(vec!["ab".to_string()]))?, Some(vec![2]));
    // Five here, and the framework's own (a group's region).
    let ours = parallelizer::backend::tasks().iter().filter(|t| !t.path.starts_with("parallelizer_core::"));
    assert_eq!(ours.count(), 5);
    Ok(())
}
