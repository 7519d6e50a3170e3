impl Solver {
    /// A method; the rank from `par = expr`, the return type with an elided
    /// lifetime (the closure infers it).
    #[worker_restricted(par = self.par)]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `#[par]` parameter of a concrete backend type.
    #[worker_restricted]
    fn step(&mut self, #[par] threads: &Threads, n: usize) -> usize {
        self.steps += n;
        threads.id()
    }
}
