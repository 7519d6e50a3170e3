fn main() -> Result<(), Error> {
    ::parallelizer::__private::worker_entry();
    let par = parallelizer::from_config("processes:4")?;
    par.run(greet, ("hi".to_string(), 2))?;
    Ok(())
}
