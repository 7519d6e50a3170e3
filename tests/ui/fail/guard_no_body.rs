use parallelizer::main_restricted;

trait Report {
    #[main_restricted]
    fn report(&self) -> u32;
}

fn main() {}
