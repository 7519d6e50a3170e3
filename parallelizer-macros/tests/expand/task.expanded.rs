/// A region task with a tuple pattern.
pub fn greet(
    par: &dyn Parallelizer,
    (greeting, times): (String, u32),
) -> Option<Vec<String>> {
    par.gather(format!("{greeting} x{times}")).unwrap()
}
const _: () = {
    fn __parallelizer_invoke(
        par: &dyn ::parallelizer::__private::Parallelizer,
        args: ::parallelizer::__private::Msg,
    ) -> ::parallelizer::__private::Result<()> {
        let args = args.into_value::<(String, u32)>()?;
        {
            let _ = greet(par, args);
            ::core::result::Result::Ok(())
        }
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(greet)),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&greet),
        kind: ::parallelizer::__private::TaskKind::Region(__parallelizer_invoke),
    };
};
/// A region task returning `Result`: a worker's `Err` becomes `TaskFailed`.
fn checked(par: &dyn Parallelizer, n: u64) -> Result<u64, String> {
    Ok(n)
}
const _: () = {
    fn __parallelizer_invoke(
        par: &dyn ::parallelizer::__private::Parallelizer,
        args: ::parallelizer::__private::Msg,
    ) -> ::parallelizer::__private::Result<()> {
        let args = args.into_value::<u64>()?;
        ::parallelizer::__private::task_outcome(par, checked(par, args))
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(checked)),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&checked),
        kind: ::parallelizer::__private::TaskKind::Region(__parallelizer_invoke),
    };
};
/// A map task.
fn square(x: u64) -> u64 {
    x * x
}
const _: () = {
    fn __parallelizer_map(
        par: &dyn ::my_reexport::__private::Parallelizer,
    ) -> ::my_reexport::__private::Result<()> {
        par.map(
                square,
                ::core::option::Option::None::<
                    ::my_reexport::__private::std::vec::Vec<u64>,
                >,
            )
            .map(::core::mem::drop)
    }
    #[::my_reexport::__private::linkme::distributed_slice(
        ::my_reexport::__private::TASKS
    )]
    #[linkme(crate = ::my_reexport::__private::linkme)]
    static __PARALLELIZER_TASK: ::my_reexport::__private::TaskEntry = ::my_reexport::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(square)),
        type_name: || ::my_reexport::__private::std::any::type_name_of_val(&square),
        kind: ::my_reexport::__private::TaskKind::Map(
            &[
                ::my_reexport::__private::MapWorker {
                    form: ::my_reexport::__private::MapForm::Map,
                    run: __parallelizer_map,
                },
            ],
        ),
    };
};
