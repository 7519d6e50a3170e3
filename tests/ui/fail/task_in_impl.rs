use parallelizer::Parallelizer;

struct Solver;

impl Solver {
    // An associated fn without `self`: the attribute cannot see the impl,
    // so rustc rejects the registration `static` it generates.
    #[parallelizer::task]
    fn solve(_par: &dyn Parallelizer, _n: u32) {}
}

fn main() {}

impl Solver {
    // With `Self` in the signature the attribute can tell, and says so.
    #[parallelizer::task]
    fn make(_par: &dyn Parallelizer, _n: u32) -> Self {
        Solver
    }
}
