/// `map_with`: the item, then the extra argument by reference.
fn scaled(x: f64, k: &f64) -> f64 {
    x * k
}
const _: () = {
    fn __parallelizer_map_with(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.map_with(
                scaled,
                ::core::option::Option::None::<
                    ::parallelizer::__private::std::vec::Vec<f64>,
                >,
                ::core::option::Option::None::<f64>,
            )
            .map(::core::mem::drop)
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(scaled)),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&scaled),
        kind: ::parallelizer::__private::TaskKind::Map(
            &[
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::MapWith,
                    run: __parallelizer_map_with,
                },
            ],
        ),
    };
};
/// `Vec<T> -> Vec<R>` serves `map` (items that are vectors) and `map_chunks`.
fn shifted(xs: Vec<i32>) -> Vec<i32> {
    xs.into_iter().map(|x| x + 1).collect()
}
const _: () = {
    fn __parallelizer_map(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.map(
                shifted,
                ::core::option::Option::None::<
                    ::parallelizer::__private::std::vec::Vec<Vec<i32>>,
                >,
            )
            .map(::core::mem::drop)
    }
    fn __parallelizer_map_chunks(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.map_chunks(shifted, ::core::option::Option::None).map(::core::mem::drop)
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(shifted)),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&shifted),
        kind: ::parallelizer::__private::TaskKind::Map(
            &[
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::Map,
                    run: __parallelizer_map,
                },
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::MapChunks,
                    run: __parallelizer_map_chunks,
                },
            ],
        ),
    };
};
/// `map_chunks_with` (and `map_with` over vector items).
fn offset(xs: Vec<i32>, by: &i32) -> Vec<i32> {
    xs.into_iter().map(|x| x + by).collect()
}
const _: () = {
    fn __parallelizer_map_with(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.map_with(
                offset,
                ::core::option::Option::None::<
                    ::parallelizer::__private::std::vec::Vec<Vec<i32>>,
                >,
                ::core::option::Option::None::<i32>,
            )
            .map(::core::mem::drop)
    }
    fn __parallelizer_map_chunks_with(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.map_chunks_with(
                offset,
                ::core::option::Option::None,
                ::core::option::Option::None::<i32>,
            )
            .map(::core::mem::drop)
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(offset)),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&offset),
        kind: ::parallelizer::__private::TaskKind::Map(
            &[
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::MapWith,
                    run: __parallelizer_map_with,
                },
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::MapChunksWith,
                    run: __parallelizer_map_chunks_with,
                },
            ],
        ),
    };
};
/// `starmap`: one parameter per tuple field.
fn product(a: u64, b: u64) -> u64 {
    a * b
}
const _: () = {
    fn __parallelizer_starmap(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.starmap(
                product,
                ::core::option::Option::None::<
                    ::parallelizer::__private::std::vec::Vec<(u64, u64)>,
                >,
            )
            .map(::core::mem::drop)
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(product)),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&product),
        kind: ::parallelizer::__private::TaskKind::Map(
            &[
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::Starmap,
                    run: __parallelizer_starmap,
                },
            ],
        ),
    };
};
/// `starmap_with`: the fields, then the extra argument.
fn labelled(i: u32, name: String, prefix: &String) -> String {
    format!("{prefix}{name}{i}")
}
const _: () = {
    fn __parallelizer_starmap_with(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.starmap_with(
                labelled,
                ::core::option::Option::None::<
                    ::parallelizer::__private::std::vec::Vec<(u32, String)>,
                >,
                ::core::option::Option::None::<String>,
            )
            .map(::core::mem::drop)
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(
            ::core::module_path!(), "::", ::core::stringify!(labelled)
        ),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&labelled),
        kind: ::parallelizer::__private::TaskKind::Map(
            &[
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::StarmapWith,
                    run: __parallelizer_starmap_with,
                },
            ],
        ),
    };
};
type Batch = Vec<f32>;
/// Forms named explicitly: a type alias hides the `Vec` from the attribute.
fn halves(xs: Batch) -> Batch {
    xs.into_iter().map(|x| x / 2.0).collect()
}
const _: () = {
    fn __parallelizer_map_chunks(
        par: &dyn ::parallelizer::__private::Parallelizer,
    ) -> ::parallelizer::__private::Result<()> {
        par.map_chunks(halves, ::core::option::Option::None).map(::core::mem::drop)
    }
    #[::parallelizer::__private::linkme::distributed_slice(
        ::parallelizer::__private::TASKS
    )]
    #[linkme(crate = ::parallelizer::__private::linkme)]
    static __PARALLELIZER_TASK: ::parallelizer::__private::TaskEntry = ::parallelizer::__private::TaskEntry {
        path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(halves)),
        type_name: || ::parallelizer::__private::std::any::type_name_of_val(&halves),
        kind: ::parallelizer::__private::TaskKind::Map(
            &[
                ::parallelizer::__private::MapWorker {
                    form: ::parallelizer::__private::MapForm::MapChunks,
                    run: __parallelizer_map_chunks,
                },
            ],
        ),
    };
};
