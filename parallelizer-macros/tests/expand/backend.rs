/// A user backend.
#[parallelizer(name = "loopback")]
pub struct Loopback {
    core: Core,
}

// Inside the runtime crate itself.
#[crate::parallelizer(name = "serial", crate = "crate")]
pub struct Serial {
    core: Core,
}
