impl Solver {
    /// A method; the rank from `par = expr`, the return type with an elided
    /// lifetime (the closure infers it).
    pub fn name(&self) -> ::parallelizer::__private::Restricted<&str> {
        if {
            use ::parallelizer::__private::AsParallelizer as _;
            ::parallelizer::__private::Parallelizer::on_main(
                (self.par).as_parallelizer(),
            )
        } {
            return ::parallelizer::__private::Restricted::InMainProcess;
        }
        #[allow(clippy::redundant_closure_call)]
        let __parallelizer_ran = (move || { &self.name })();
        ::parallelizer::__private::Restricted::Ran(__parallelizer_ran)
    }
    /// A `#[par]` parameter of a concrete backend type.
    fn step(
        &mut self,
        threads: &Threads,
        n: usize,
    ) -> ::parallelizer::__private::Restricted<usize> {
        if {
            use ::parallelizer::__private::AsParallelizer as _;
            ::parallelizer::__private::Parallelizer::on_main((threads).as_parallelizer())
        } {
            return ::parallelizer::__private::Restricted::InMainProcess;
        }
        #[allow(clippy::redundant_closure_call)]
        let __parallelizer_ran = (move || -> usize {
            self.steps += n;
            threads.id()
        })();
        ::parallelizer::__private::Restricted::Ran(__parallelizer_ran)
    }
}
