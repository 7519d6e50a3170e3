use parallelizer::Parallelizer;

#[parallelizer::task]
async fn later(_par: &dyn Parallelizer, _x: u32) {}

#[parallelizer::task]
unsafe fn danger(x: u32) -> u32 {
    x
}

#[parallelizer::task]
extern "C" fn foreign(x: u32) -> u32 {
    x
}

fn main() {}
