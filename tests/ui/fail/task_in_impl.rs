use parallelizer::Parallelizer;

struct Solver;

impl Solver {
    // An associated fn without `self`: the attribute cannot see the impl,
    // so rustc rejects the registration `static` it generates.
    #[parallelizer::task]
    fn solve(_par: &dyn Parallelizer, _n: u32) {}
}

fn main() {}
