use parallelizer::main_restricted;

// `par = expr` must be something the guard can ask for a rank.
#[main_restricted(par = 42_u32)]
fn wrong_rank_source() {}

fn main() {}
