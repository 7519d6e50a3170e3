mod tests {
    #[::core::prelude::v1::test]
    fn gathers() {
        ::parallelizer::__private::test_worker_entry(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(gathers)),
        );
        assert_eq!(1 + 1, 2);
    }
    #[::core::prelude::v1::test]
    #[should_panic(expected = "boom")]
    fn panics() {
        ::parallelizer::__private::test_worker_entry(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(panics)),
        );
        panic!("boom");
    }
}
