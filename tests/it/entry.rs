//! `#[parallelizer::test]` runs as a normal test (the worker entry returns
//! at once in a process that is not a launched worker), with the usual
//! test attributes and return types.

use parallelizer::Parallelizer;

#[parallelizer::test]
fn plain() {
    // The name a process backend re-executes this binary with (`--exact`).
    assert_eq!(
        parallelizer::backend::current_test().as_deref(),
        Some("entry::plain")
    );
    let par = parallelizer::from_config("threads:2").unwrap();
    let ids = par
        .run(|p: &dyn Parallelizer, ()| p.gather(p.id()).unwrap(), ())
        .unwrap();
    assert_eq!(ids, Some(vec![0, 1]));
}

#[parallelizer::test]
fn returns_result() -> Result<(), parallelizer::Error> {
    let par = parallelizer::from_config("serial")?;
    assert_eq!(par.nprocs(), 1);
    Ok(())
}

#[parallelizer::test]
#[should_panic(expected = "boom")]
fn should_panic_is_kept() {
    panic!("boom");
}

#[parallelizer::test]
#[ignore = "shows that #[ignore] is kept; run with --ignored"]
fn ignore_is_kept() {}

mod nested {
    #[parallelizer::test]
    fn in_a_module() {
        assert_eq!(
            parallelizer::backend::current_test().as_deref(),
            Some("entry::nested::in_a_module")
        );
    }
}
