mod tests {
    #[parallelizer::test]
    fn gathers() {
        assert_eq!(1 + 1, 2);
    }

    #[parallelizer::test]
    #[should_panic(expected = "boom")]
    fn panics() {
        panic!("boom");
    }
}
