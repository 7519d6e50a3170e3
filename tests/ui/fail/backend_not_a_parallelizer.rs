// The attribute accepts any plain struct; the registration needs
// `FromConfig` (and so `Parallelizer`), and the error says so at the name.
#[parallelizer::parallelizer(name = "plain")]
struct Plain;

fn main() {}
