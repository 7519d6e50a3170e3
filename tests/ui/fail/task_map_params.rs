// Items are passed by value; only the last parameter, the extra argument,
// may be a reference, and a shared one.
#[parallelizer::task]
fn item_by_reference(x: &u32, k: u32) -> u32 {
    x + k
}

#[parallelizer::task]
fn only_a_reference(x: &u32) -> u32 {
    *x
}

#[parallelizer::task]
fn mutable_extra(x: u32, k: &mut u32) -> u32 {
    x + *k
}

// `starmap` tuples have at most 6 fields.
#[parallelizer::task]
fn seven(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8) -> u8 {
    a + b + c + d + e + f + g
}

// The rank handle goes first, and only region tasks take it.
#[parallelizer::task]
fn handle_last(x: u32, par: &dyn parallelizer::Parallelizer) -> u32 {
    x + par.id() as u32
}

// Items must be data that can travel (`Rc` cannot cross threads).
#[parallelizer::task]
fn not_data(x: std::rc::Rc<u32>) -> u32 {
    *x
}

fn main() {}
