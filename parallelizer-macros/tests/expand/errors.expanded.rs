enum Colors {
    Red,
}
::core::compile_error! {
    "#[parallelizer(name = \"...\")] registers a backend struct, not an enum; put it on the struct that implements `Parallelizer` and `FromConfig`"
}
async fn fetch(p: &Threads) -> u32 {
    1
}
::core::compile_error! {
    "#[main_restricted] cannot go on an `async fn`: the guard checks the rank and runs the body in a closure"
}
