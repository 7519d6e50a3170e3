/// A region task with a tuple pattern.
#[parallelizer::task]
pub fn greet(par: &dyn Parallelizer, (greeting, times): (String, u32)) -> Option<Vec<String>> {
    par.gather(format!("{greeting} x{times}")).unwrap()
}

/// A region task returning `Result`: a worker's `Err` becomes `TaskFailed`.
#[parallelizer::task]
fn checked(par: &dyn Parallelizer, n: u64) -> Result<u64, String> {
    Ok(n)
}

/// A map task.
#[parallelizer::task(crate = "::my_reexport")]
fn square(x: u64) -> u64 {
    x * x
}
