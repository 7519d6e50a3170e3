// `use parallelizer::main_restricted;` brings both the attribute and the fn.
use parallelizer::{Restricted, main_restricted, worker_restricted};

#[main_restricted]
fn attribute_form() -> u8 {
    7
}

fn main() {
    let par = parallelizer::get_default();
    assert_eq!(attribute_form(), Restricted::Ran(7));
    assert_eq!(main_restricted(&*par, || 8), Restricted::Ran(8));
    assert_eq!(worker_restricted(&*par, || 9), Restricted::InMainProcess);
}
