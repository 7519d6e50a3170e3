#[parallelizer::parallelizer(name = "colors")]
enum Colors {
    Red,
}

fn main() {}
