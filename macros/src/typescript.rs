//! Code generation for the TypeScript declarations: an impl of `capwire::typescript::TS`
//! describing the target as an interface. It is wrapped in the runtime's
//! `__private::typescript!`, which keeps it only when capwire's `typescript` feature is on,
//! so that a program without the feature compiles none of it.
//!
//! Each type of a signature is asked for its TypeScript name through a probe
//! (`__private::ts::Probe<T>`) that answers `unknown`, and records a problem, for a type
//! without `TS`: turning the feature on never makes a program fail to compile.

use crate::expand::param_name;
use crate::model::{Method, Ret, Target};
use crate::names;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Path, Type};

/// The `TS` impl of an inherent target or of an interface (`dyn Trait`).
pub fn declare(t: &Target) -> TokenStream {
    let k = &t.krate;
    let ty = &t.self_ty;
    let name = t.name.to_string();
    let file = format!("{name}.ts");
    let docs = doc_strings(&t.docs);
    let methods: Vec<&Method> = t.methods.iter().filter(|m| m.dispatched).collect();
    let members = methods.iter().map(|m| member(k, m));
    let visits = methods.iter().map(|m| {
        let cfgs = &m.cfgs;
        let types = m.args.iter().map(|a| &a.ty).chain(ret_type(m));
        quote! {
            #(#cfgs)*
            {
                #((&#k::__private::ts::Probe::<#types>::NEW).visit(v);)*
            }
        }
    });
    let head = ts_head(k, ty);
    quote! {
        #k::__private::typescript! {
            #head {
                type WithoutGenerics = Self;
                type OptionInnerType = Self;

                fn docs() -> ::core::option::Option<::std::string::String> {
                    let docs = #k::__private::ts::jsdoc(&[#(#docs),*], "");
                    (!docs.is_empty()).then_some(docs)
                }

                fn name(_: &#k::__private::ts::Config) -> ::std::string::String {
                    <::std::string::String as ::core::convert::From<&str>>::from(#name)
                }

                fn inline(cfg: &#k::__private::ts::Config) -> ::std::string::String {
                    <Self as #k::__private::ts::TS>::name(cfg)
                }

                #[allow(unused_imports, unused_mut)]
                fn decl(cfg: &#k::__private::ts::Config) -> ::std::string::String {
                    use #k::__private::ts::{Known as _, Unknown as _};
                    let mut members = ::std::vec::Vec::new();
                    #(#members)*
                    #k::__private::ts::interface(#name, members)
                }

                fn decl_concrete(cfg: &#k::__private::ts::Config) -> ::std::string::String {
                    <Self as #k::__private::ts::TS>::decl(cfg)
                }

                fn output_path() -> ::core::option::Option<::std::path::PathBuf> {
                    ::core::option::Option::Some(<::std::path::PathBuf as ::core::convert::From<&str>>::from(#file))
                }

                #[allow(unused_imports, unused_variables)]
                fn visit_dependencies(v: &mut impl #k::__private::ts::TypeVisitor)
                where
                    Self: 'static,
                {
                    use #k::__private::ts::{Known as _, Unknown as _};
                    #(#visits)*
                }
            }
        }
    }
}

/// The `TS` impl of a type served through an interface: it is that interface.
pub fn declare_impl(t: &Target, iface: &Path) -> TokenStream {
    let k = &t.krate;
    let head = ts_head(k, &t.self_ty);
    quote! {
        #k::__private::typescript! {
            #head {
                type WithoutGenerics = Self;
                type OptionInnerType = Self;

                fn name(cfg: &#k::__private::ts::Config) -> ::std::string::String {
                    <dyn #iface as #k::__private::ts::TS>::name(cfg)
                }

                fn inline(cfg: &#k::__private::ts::Config) -> ::std::string::String {
                    <Self as #k::__private::ts::TS>::name(cfg)
                }

                fn visit_dependencies(v: &mut impl #k::__private::ts::TypeVisitor)
                where
                    Self: 'static,
                {
                    v.visit::<dyn #iface>();
                }
            }
        }
    }
}

fn ts_head(k: &Path, ty: &Type) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl #k::__private::ts::TS for #ty
    }
}

fn ret_type(m: &Method) -> Option<&Type> {
    match &m.ret {
        Ret::Unit => None,
        Ret::Value(ty) | Ret::Result(ty, _) => Some(ty),
    }
}

/// One `members.push(..)`: the method's or getter's declaration.
fn member(k: &Path, m: &Method) -> TokenStream {
    let cfgs = &m.cfgs;
    let wire = &m.wire;
    let docs = doc_strings(&m.docs);
    let ret = match ret_type(m) {
        None => quote!(<::std::string::String as ::core::convert::From<&str>>::from("undefined")),
        Some(ty) => quote!((&#k::__private::ts::Probe::<#ty>::NEW).ty(cfg)),
    };
    let decl = if m.getter {
        quote!(#k::__private::ts::getter(&[#(#docs),*], #wire, #ret))
    } else {
        let params = m.args.iter().enumerate().map(|(i, a)| {
            let ty = &a.ty;
            let name = names::lower_camel(&param_name(a, i).to_string());
            quote! {
                #k::__private::ts::Param {
                    name: #name,
                    ty: (&#k::__private::ts::Probe::<#ty>::NEW).ty(cfg),
                    option: (&#k::__private::ts::Probe::<#ty>::NEW).is_option(),
                }
            }
        });
        quote!(#k::__private::ts::method(&[#(#docs),*], #wire, &[#(#params),*], #ret))
    };
    quote! {
        #(#cfgs)*
        members.push(#decl);
    }
}

/// The values of `#[doc = ...]` attributes (a `///` line is one), as expressions of type
/// `&str`.
fn doc_strings(attrs: &[syn::Attribute]) -> Vec<Expr> {
    attrs
        .iter()
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => Some(nv.value.clone()),
            _ => None,
        })
        .collect()
}
