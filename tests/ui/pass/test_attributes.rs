// `#[parallelizer::test]` with the other test attributes (compiled, not
// run, here: tests/entry.rs runs real ones).
#[parallelizer::test]
#[should_panic(expected = "boom")]
fn panics() {
    panic!("boom");
}

#[parallelizer::test]
#[ignore = "slow"]
fn ignored() -> Result<(), String> {
    Ok(())
}

fn main() {}
