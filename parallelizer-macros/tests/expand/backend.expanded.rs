/// A user backend.
pub struct Loopback {
    core: Core,
}
::parallelizer::__private::inventory::submit! {
    ::parallelizer::__private::BackendEntry { name : "loopback", type_name :
    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(Loopback)), build :
    ::parallelizer::__private::build_backend:: < Loopback >, }
}
pub struct Serial {
    core: Core,
}
crate::__private::inventory::submit! {
    crate ::__private::BackendEntry { name : "serial", type_name :
    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(Serial)), build :
    crate ::__private::build_backend:: < Serial >, }
}
