//! Expand: turns a validated model into code. Generated code reaches the
//! runtime only through `<crate>::__private`.

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ReturnType, Type, parse_quote};

use crate::validate::{Backend, Entry, Form, Guard, Rank, Task, TaskShape};

/// The struct, then its registration with inventory.
pub fn backend(b: Backend) -> TokenStream {
    let Backend { item, name, krate } = b;
    let ident = &item.ident;
    quote! {
        #item
        #krate::__private::inventory::submit! {
            #krate::__private::BackendEntry {
                name: #name,
                type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                build: #krate::__private::build_backend::<#ident>,
            }
        }
    }
}

/// Whether a return type has elided lifetimes or `impl Trait`, which a
/// closure's return annotation cannot repeat; the closure then infers it.
pub(crate) fn needs_inference(tokens: TokenStream) -> bool {
    let mut after_amp = false;
    for tt in tokens {
        match &tt {
            TokenTree::Ident(i) if i == "impl" || i == "_" => return true,
            // `&'a T`: an explicit lifetime follows the `&`.
            TokenTree::Punct(p) if p.as_char() == '\'' => {}
            // `&T`, `&mut T`, `&&T`: elided.
            _ if after_amp => return true,
            TokenTree::Group(g) if needs_inference(g.stream()) => return true,
            _ => {}
        }
        after_amp = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '&');
    }
    after_amp
}

/// `fn f(..) -> T { body }` becomes `fn f(..) -> Restricted<T>`: the rank
/// check first, then the body in an immediately-called closure so that its
/// `return` and `?` keep their meaning.
pub fn guard(g: Guard) -> TokenStream {
    let Guard {
        mut func,
        main,
        rank,
        krate,
    } = g;
    let ret: Type = match &func.sig.output {
        ReturnType::Default => parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let ret_span = match &func.sig.output {
        ReturnType::Default => func.sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    func.sig.output = parse_quote_spanned_output(&krate, &ret, ret_span);
    let rank = match rank {
        Rank::Param(ident) => ident.into_token_stream(),
        Rank::Expr(expr) => expr.into_token_stream(),
        Rank::Current => quote!(#krate::__private::current()),
    };
    // Spanned at the rank's source, so "cannot ask X for a rank" points there.
    let asked = quote_spanned!(rank.span()=> (#rank).as_parallelizer());
    let on_main = quote! {{
        use #krate::__private::AsParallelizer as _;
        #krate::__private::Parallelizer::on_main(#asked)
    }};
    let (skip_if, marker) = if main {
        (quote!(!#on_main), quote!(InWorkerProcess))
    } else {
        (on_main, quote!(InMainProcess))
    };
    let annotation = if needs_inference(ret.to_token_stream()) {
        None
    } else {
        Some(quote!(-> #ret))
    };
    let body = &func.block;
    let block: syn::Block = parse_quote! {{
        if #skip_if {
            return #krate::__private::Restricted::#marker;
        }
        #[allow(clippy::redundant_closure_call)]
        let __parallelizer_ran = (move || #annotation #body)();
        #krate::__private::Restricted::Ran(__parallelizer_ran)
    }};
    *func.block = block;
    func.into_token_stream()
}

fn parse_quote_spanned_output(
    krate: &syn::Path,
    ret: &Type,
    span: proc_macro2::Span,
) -> ReturnType {
    let restricted = quote_spanned!(span=> #krate::__private::Restricted<#ret>);
    parse_quote!(-> #restricted)
}

/// The fn unchanged, then its [`TaskEntry`] in the linkme slice, in an
/// anonymous const so nothing new is named in the user's module.
pub fn task(t: Task) -> TokenStream {
    let Task {
        func,
        shape,
        result,
        krate,
    } = t;
    let ident = &func.sig.ident;
    let p = quote!(#krate::__private);
    let (kind, invoker) = match shape {
        TaskShape::Region { args } => {
            let call = quote!(#ident(par, args));
            let finish = match &result {
                Some(ty) => quote_spanned!(ty.span()=> #p::task_outcome(par, #call)),
                None => quote! {{
                    let _ = #call;
                    ::core::result::Result::Ok(())
                }},
            };
            (
                quote!(#p::TaskKind::Region(__parallelizer_invoke)),
                quote! {
                    fn __parallelizer_invoke(par: &dyn #p::Parallelizer, args: #p::Msg) -> #p::Result<()> {
                        let args = args.into_value::<#args>()?;
                        #finish
                    }
                },
            )
        }
        TaskShape::Items {
            items,
            extra,
            forms,
        } => {
            // Spanned at the user's types, so that "`Rc<u32>` is not
            // `Data`" points at the parameter, not at the attribute.
            let at = items
                .first()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span());
            let none = quote!(::core::option::Option::None);
            let data = quote_spanned!(at=> #none::<#p::std::vec::Vec<(#(#items,)*)>>);
            let item = items.first();
            let extra_at = extra.as_ref().map_or(at, |t| t.span());
            let extra = quote_spanned!(extra_at=> #none::<#extra>);
            let (fns, workers): (Vec<_>, Vec<_>) = forms
                .iter()
                .map(|form| {
                    let name = form.name();
                    let vec = quote!(#p::std::vec::Vec);
                    let call = match form {
                        Form::Map => quote_spanned!(at=> map(#ident, #none::<#vec<#item>>)),
                        Form::MapWith => {
                            quote_spanned!(at=> map_with(#ident, #none::<#vec<#item>>, #extra))
                        }
                        // The element type follows from the fn's `Vec<T>`.
                        Form::MapChunks => quote_spanned!(at=> map_chunks(#ident, #none)),
                        Form::MapChunksWith => {
                            quote_spanned!(at=> map_chunks_with(#ident, #none, #extra))
                        }
                        Form::Starmap => quote_spanned!(at=> starmap(#ident, #data)),
                        Form::StarmapWith => {
                            quote_spanned!(at=> starmap_with(#ident, #data, #extra))
                        }
                    };
                    let call = quote_spanned!(at=> par.#call);
                    let variant = syn::Ident::new(&camel(name), proc_macro2::Span::call_site());
                    let worker = syn::Ident::new(
                        &format!("__parallelizer_{name}"),
                        proc_macro2::Span::call_site(),
                    );
                    (
                        quote! {
                            fn #worker(par: &dyn #p::Parallelizer) -> #p::Result<()> {
                                #call.map(::core::mem::drop)
                            }
                        },
                        quote!(#p::MapWorker { form: #p::MapForm::#variant, run: #worker }),
                    )
                })
                .unzip();
            (
                quote!(#p::TaskKind::Map(&[#(#workers),*])),
                quote!(#(#fns)*),
            )
        }
    };
    let linkme = quote!(#p::linkme);
    // The names inside the anonymous const cannot clash with the user's
    // (a task may itself be called `invoke`).
    quote! {
        #func
        const _: () = {
            #invoker
            #[#linkme::distributed_slice(#p::TASKS)]
            #[linkme(crate = #linkme)]
            static __PARALLELIZER_TASK: #p::TaskEntry = #p::TaskEntry {
                path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                type_name: || #p::std::any::type_name_of_val(&#ident),
                kind: #kind,
            };
        };
    }
}

/// `map_chunks_with` -> `MapChunksWith`.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `main` or a test with the worker entry as its first statement.
pub fn entry(e: Entry) -> TokenStream {
    let Entry {
        mut func,
        test,
        krate,
    } = e;
    let ident = &func.sig.ident;
    let hook: syn::Stmt = if test {
        parse_quote! {
            #krate::__private::test_worker_entry(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
            );
        }
    } else {
        parse_quote!(#krate::__private::worker_entry();)
    };
    func.block.stmts.insert(0, hook);
    if test {
        func.attrs
            .insert(0, parse_quote!(#[::core::prelude::v1::test]));
    }
    func.into_token_stream()
}
