/// The rank comes from the first parallelizer parameter.
pub fn mainr(
    par: &dyn Parallelizer,
    x: u32,
) -> ::parallelizer::__private::Restricted<(&'static str, u32)> {
    if !{
        use ::parallelizer::__private::AsParallelizer as _;
        ::parallelizer::__private::Parallelizer::on_main((par).as_parallelizer())
    } {
        return ::parallelizer::__private::Restricted::InWorkerProcess;
    }
    #[allow(clippy::redundant_closure_call)]
    let __parallelizer_ran = (move || -> (&'static str, u32) { ("main", x) })();
    ::parallelizer::__private::Restricted::Ran(__parallelizer_ran)
}
/// No parallelizer parameter: `current()`; `?` and `return` in the body.
fn parse(
    text: &str,
) -> ::parallelizer::__private::Restricted<Result<u32, ParseIntError>> {
    if !{
        use ::parallelizer::__private::AsParallelizer as _;
        ::parallelizer::__private::Parallelizer::on_main(
            (::parallelizer::__private::current()).as_parallelizer(),
        )
    } {
        return ::parallelizer::__private::Restricted::InWorkerProcess;
    }
    #[allow(clippy::redundant_closure_call)]
    let __parallelizer_ran = (move || -> Result<u32, ParseIntError> {
        if text.is_empty() {
            return Ok(0);
        }
        Ok(text.parse::<u32>()? + 1)
    })();
    ::parallelizer::__private::Restricted::Ran(__parallelizer_ran)
}
/// Unit fn, generic rank parameter.
fn log<P: Parallelizer>(
    par: &P,
    msg: &str,
) -> ::parallelizer::__private::Restricted<()> {
    if !{
        use ::parallelizer::__private::AsParallelizer as _;
        ::parallelizer::__private::Parallelizer::on_main((par).as_parallelizer())
    } {
        return ::parallelizer::__private::Restricted::InWorkerProcess;
    }
    #[allow(clippy::redundant_closure_call)]
    let __parallelizer_ran = (move || -> () {
        println!("{msg}");
    })();
    ::parallelizer::__private::Restricted::Ran(__parallelizer_ran)
}
