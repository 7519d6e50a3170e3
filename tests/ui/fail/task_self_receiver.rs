use parallelizer::Parallelizer;

struct Solver;

impl Solver {
    #[parallelizer::task]
    fn solve(&self, _par: &dyn Parallelizer) {}
}

fn main() {}
