//! Procedural macros of `parallelizer`. Each attribute is parsed into a
//! model, validated, then expanded; on error the original item is emitted
//! with a `compile_error!` pointing at the offending tokens.

use proc_macro::TokenStream;

mod backend;

/// Registers a `Parallelizer` + `FromConfig` struct as a backend under a
/// mode name, so `from_config("NAME")`, `lookup` and `modes()` find it.
#[proc_macro_attribute]
pub fn parallelizer(args: TokenStream, item: TokenStream) -> TokenStream {
    backend::expand(args.into(), item.into()).into()
}
