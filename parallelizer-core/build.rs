//! Empty on purpose: Cargo only honours `links = "parallelizer-core"` (which
//! keeps two copies of the runtime, and so two registries, out of one binary)
//! for packages that have a build script.
fn main() {}
