/// The rank comes from the first parallelizer parameter.
#[main_restricted]
pub fn mainr(par: &dyn Parallelizer, x: u32) -> (&'static str, u32) {
    ("main", x)
}

/// No parallelizer parameter: `current()`; `?` and `return` in the body.
#[main_restricted]
fn parse(text: &str) -> Result<u32, ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    Ok(text.parse::<u32>()? + 1)
}

/// Unit fn, generic rank parameter.
#[main_restricted]
fn log<P: Parallelizer>(par: &P, msg: &str) {
    println!("{msg}");
}
