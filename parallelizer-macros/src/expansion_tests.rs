//! Expansion snapshots: every file `tests/expand/NAME.rs` is expanded here
//! (each item carrying one of our attributes is replaced by the expansion,
//! the way `cargo expand` would show it), pretty-printed with prettyplease
//! and compared with `tests/expand/NAME.expanded.rs`. Run with
//! `UPDATE_EXPAND=1` to rewrite the snapshots, then review the diff.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Attribute, ImplItem, Item};

use crate::expand_attr;
use crate::parse::Kind;

fn kind_of(attr: &Attribute) -> Option<Kind> {
    let last = attr.path().segments.last()?.ident.to_string();
    Some(match last.as_str() {
        "parallelizer" => Kind::Backend,
        "main_restricted" => Kind::MainRestricted,
        "worker_restricted" => Kind::WorkerRestricted,
        "task" => Kind::Task,
        "main" => Kind::Main,
        "test" if attr.path().segments.len() > 1 => Kind::Test,
        _ => return None,
    })
}

fn args_of(attr: &Attribute) -> TokenStream {
    match &attr.meta {
        syn::Meta::List(l) => l.tokens.clone(),
        _ => TokenStream::new(),
    }
}

/// Expands the first of our attributes on `attrs`, if any.
fn expand_one(
    attrs: &mut Vec<Attribute>,
    item: impl FnOnce(&[Attribute]) -> TokenStream,
) -> Option<TokenStream> {
    let pos = attrs.iter().position(|a| kind_of(a).is_some())?;
    let attr = attrs.remove(pos);
    let tokens = item(attrs);
    Some(expand_attr(kind_of(&attr)?, args_of(&attr), tokens))
}

fn expand_items(items: Vec<Item>) -> Vec<Item> {
    let mut out = Vec::new();
    for mut item in items {
        match &mut item {
            Item::Impl(imp) => {
                let mut new_items = Vec::new();
                for mut ii in std::mem::take(&mut imp.items) {
                    if let ImplItem::Fn(f) = &mut ii {
                        let mut attrs = std::mem::take(&mut f.attrs);
                        let f2 = f.clone();
                        if let Some(ts) = expand_one(&mut attrs, |a| {
                            let mut f3 = f2.clone();
                            f3.attrs = a.to_vec();
                            f3.into_token_stream()
                        }) {
                            new_items.push(syn::parse2(ts).expect("expansion is an impl item"));
                            continue;
                        }
                        f.attrs = attrs;
                    }
                    new_items.push(ii);
                }
                imp.items = new_items;
                out.push(item);
            }
            Item::Mod(m) if m.content.is_some() => {
                let (brace, items) = m.content.take().unwrap();
                m.content = Some((brace, expand_items(items)));
                out.push(item);
            }
            _ => {
                let attrs = match &mut item {
                    Item::Fn(f) => Some(&mut f.attrs),
                    Item::Struct(s) => Some(&mut s.attrs),
                    Item::Enum(e) => Some(&mut e.attrs),
                    _ => None,
                };
                let Some(attrs) = attrs else {
                    out.push(item);
                    continue;
                };
                let mut taken = std::mem::take(attrs);
                let mut bare = item.clone();
                let expanded = expand_one(&mut taken, |a| {
                    match &mut bare {
                        Item::Fn(f) => f.attrs = a.to_vec(),
                        Item::Struct(s) => s.attrs = a.to_vec(),
                        Item::Enum(e) => e.attrs = a.to_vec(),
                        _ => {}
                    }
                    bare.to_token_stream()
                });
                match expanded {
                    Some(ts) => {
                        let file: syn::File = syn::parse2(ts).expect("expansion is items");
                        out.extend(file.items);
                    }
                    None => {
                        match &mut item {
                            Item::Fn(f) => f.attrs = taken,
                            Item::Struct(s) => s.attrs = taken,
                            Item::Enum(e) => e.attrs = taken,
                            _ => {}
                        }
                        out.push(item);
                    }
                }
            }
        }
    }
    out
}

fn expand_file(source: &str) -> String {
    let file: syn::File = syn::parse_str(source).expect("input parses");
    let expanded = syn::File {
        items: expand_items(file.items),
        ..file
    };
    prettyplease::unparse(&expanded)
}

#[test]
fn expansion_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let update = std::env::var_os("UPDATE_EXPAND").is_some();
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "rs")
                && !p.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 6,
        "expected one input per attribute in {dir:?}"
    );
    let mut stale = Vec::new();
    for input in inputs {
        let got = expand_file(&std::fs::read_to_string(&input).unwrap());
        let snapshot = input.with_extension("expanded.rs");
        let want = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if got != want {
            if update {
                std::fs::write(&snapshot, &got).unwrap();
            } else {
                stale.push(format!(
                    "{}:\n--- want\n{want}\n--- got\n{got}",
                    snapshot.display()
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "expansions changed (rerun with UPDATE_EXPAND=1 and review):\n{}",
        stale.join("\n")
    );
}

#[test]
fn needs_inference_rules() {
    use crate::expand::needs_inference;
    let t = |s: &str| needs_inference(s.parse().unwrap());
    assert!(!t("u32"));
    assert!(!t("Result<Vec<u8>, String>"));
    assert!(!t("&'static str"));
    assert!(t("&str"));
    assert!(t("Option<&mut T>"));
    assert!(t("impl Iterator<Item = u8>"));
    assert!(t("Cow<'_, str>"));
}
