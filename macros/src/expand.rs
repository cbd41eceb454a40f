//! Code generation from a checked [`Target`]: the dispatch table (`RpcObject`), the typed
//! client, and the `RpcTarget`/`Remote` impls. Per-method code is kept small; the work is
//! in generic functions of `capwire::__private`.

use crate::model::{self, Errors, Kind, Method, Ret, Shape, Target};
use crate::typescript;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Item, Path, ReturnType, Type};

pub fn expand(kind: Kind, args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let krate = model::parse_attr_args(args, &mut errors);
    let item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(e) => {
            let e = e.to_compile_error();
            return quote!(#e #input);
        }
    };
    let (mut item, target) = model::parse(kind, krate, item, &mut errors);
    match target {
        Some(target) if errors.is_empty() => {
            let generated = match &target.shape {
                Shape::Inherent => inherent(&target),
                Shape::Interface => {
                    if let Item::Trait(tr) = &mut item {
                        rewrite_trait(tr, &target);
                    }
                    interface(&target)
                }
                Shape::InterfaceImpl(path) => {
                    if let Item::Impl(imp) = &mut item {
                        rewrite_async_impl(imp, &target.krate);
                    }
                    interface_impl(&target, path)
                }
            };
            quote!(#item #generated)
        }
        target => {
            // The user's item as written, the errors, and for an impl block the code for
            // every method that had no error, so that uses of the type elsewhere do not
            // add unrelated errors.
            let fallback = match target {
                Some(t) if matches!(t.shape, Shape::Inherent) => inherent(&t),
                _ => TokenStream::new(),
            };
            let errors = errors.into_compile_errors();
            quote!(#item #errors #fallback)
        }
    }
}

/// `tokens` with every span set to `span`, so that errors in generated code point at the
/// user's tokens (the crate path is spanned at the attribute otherwise).
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = proc_macro2::TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// The error type of a method returning `Result<T, E>` when `E` travels as itself (an
/// `AppError`: a serde and `std::error::Error` type of the user's), with the name it
/// travels under, its last path segment. `RpcError` and `io::Error` (and the runtime's
/// other error types) convert into an `RpcError` instead, as does the error of a
/// one-argument alias (`io::Result<T>`).
pub(crate) fn app_error(m: &Method) -> Option<(&Type, String)> {
    let Ret::Result(_, Some(err)) = &m.ret else {
        return None;
    };
    let Type::Path(p) = &**err else {
        return None;
    };
    let segments: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let converts = match segments.as_slice() {
        [.., last] if last == "RpcError" || last == "ProtocolError" || last == "Infallible" => true,
        [.., io, last] if io == "io" && last == "Error" => true,
        _ => false,
    };
    let name = segments.last()?.clone();
    (!converts).then_some((&**err, name))
}

/// Converts a method's result into `Result<Value, RpcError>`.
fn convert(m: &Method, krate: &Path, value: TokenStream) -> TokenStream {
    // Bounded by `__private::Returned`, spanned at the type, as the check at the start of
    // the body is: an unmet bound is reported once, by the check.
    let into = |ty: &Type| {
        let span = ty.span();
        let k = respan(krate.to_token_stream(), span);
        quote_spanned!(span=> #k::__private::into_return::<#ty>)
    };
    match &m.ret {
        Ret::Result(ok, err) => {
            let into = into(ok);
            let err_span = err.as_ref().map_or(m.span, Spanned::span);
            let k = respan(krate.to_token_stream(), err_span);
            let e = syn::Ident::new("e", Span::call_site());
            let into_error = match app_error(m) {
                Some((ty, name)) => {
                    quote_spanned!(err_span=> #k::__private::app_error::<#ty>(#name, &#e))
                }
                None => quote_spanned!(err_span=> #k::__private::into_error(#e)),
            };
            quote! {
                match #value {
                    ::core::result::Result::Ok(v) => #into(v),
                    ::core::result::Result::Err(e) => ::core::result::Result::Err(#into_error),
                }
            }
        }
        Ret::Value(ty) => {
            let into = into(ty);
            quote!(#into(#value))
        }
        Ret::Unit => {
            let k = respan(krate.to_token_stream(), m.span);
            quote_spanned!(m.span=> #k::__private::into_return::<()>(#value))
        }
    }
}

/// The type of a method's result that travels (`T` of `Result<T, E>`), if any.
fn result_type(m: &Method) -> Option<&Type> {
    match &m.ret {
        Ret::Unit => None,
        Ret::Value(ty) | Ret::Result(ty, _) => Some(ty),
    }
}

/// A check of each argument's type and of the result's, spanned at the type, for the start
/// of a body that uses them: an argument or result that is not serde gives the custom
/// message of `__private::Argument` or `Returned` there, and rustc leaves out the raw
/// trait-bound errors of the later uses at the same type.
fn checks(m: &Method, krate: &Path) -> TokenStream {
    let args = m.args.iter().map(|a| {
        let ty = &a.ty;
        let k = respan(krate.to_token_stream(), ty.span());
        quote_spanned!(ty.span()=> #k::__private::argument::<#ty>();)
    });
    let ret = result_type(m).map(|ty| {
        let k = respan(krate.to_token_stream(), ty.span());
        quote_spanned!(ty.span()=> #k::__private::returned::<#ty>();)
    });
    let err = app_error(m).map(|(ty, _)| {
        let k = respan(krate.to_token_stream(), ty.span());
        quote_spanned!(ty.span()=> #k::__private::app_error_type::<#ty>();)
    });
    quote!(#(#args)* #ret #err)
}

/// One `match` arm per method: decode the arguments, call, convert the result. `callee`
/// names the type or trait whose method is called (`Self::` or `<Self as Trait>::`), so
/// that methods of `Arc` or of traits in scope never shadow the user's.
fn arms(t: &Target, callee: &TokenStream, getters: bool) -> Vec<TokenStream> {
    let krate = &t.krate;
    t.methods
        .iter()
        .filter(|m| m.getter == getters && m.dispatched)
        .map(|m| {
            let wire = &m.wire;
            let ident = &m.ident;
            let cfgs = &m.cfgs;
            let vars: Vec<_> = (0..m.args.len()).map(|i| format_ident!("__arg{}", i)).collect();
            let checks = checks(m, krate);
            let decode = m.args.iter().zip(&vars).enumerate().map(|(i, (a, var))| {
                let (ty, name) = (&a.ty, &a.name);
                let k = respan(krate.to_token_stream(), ty.span());
                quote_spanned! {ty.span()=>
                    let #var: #ty = match #k::__private::take_arg::<#ty>(&mut __capwire_args, #i, #wire, #name) {
                        ::core::result::Result::Ok(v) => v,
                        ::core::result::Result::Err(e) => return #k::__private::ready(::core::result::Result::Err(e)),
                    };
                }
            });
            // `this` is the dispatch function's binding: an ident of the call site, not
            // of the method's span, which may come from another hygiene context (a target
            // written by a `macro_rules!`).
            let this = syn::Ident::new("this", Span::call_site());
            let call = quote_spanned!(m.ident.span()=> #callee #ident(&*#this, #(#vars),*));
            let k = respan(krate.to_token_stream(), m.span);
            let body = if m.is_async {
                let c = convert(m, krate, quote!(#call.await));
                quote_spanned!(m.span=> #k::__private::later(async move { #c }))
            } else {
                let c = convert(m, krate, call);
                quote!(#k::__private::ready(#c))
            };
            // The arguments are moved out of the call's own vector, not copied: a large
            // argument is held once.
            let take = (!m.args.is_empty()).then(|| quote!(let mut __capwire_args = args;));
            quote!(#(#cfgs)* #wire => { #checks #take #(#decode)* #body })
        })
        .collect()
}

/// The two dispatch functions' bodies, as `match`es on the wire name.
fn dispatch(t: &Target, callee: &TokenStream, method_reads: bool) -> (TokenStream, TokenStream) {
    let krate = &t.krate;
    let calls = arms(t, callee, false);
    // `connect` is reserved on an entrypoint (Workers' TCP socket API): say so when called.
    let connect = if t.kind == Kind::Entrypoint {
        quote!("connect" => #krate::__private::connect_unsupported(),)
    } else {
        TokenStream::new()
    };
    let mut gets = arms(t, callee, true);
    if method_reads {
        // Reading a method as a property gives a function that calls it, as in capnweb.
        gets.extend(
            t.methods
                .iter()
                .filter(|m| !m.getter && m.dispatched)
                .map(|m| {
                    let (wire, cfgs) = (&m.wire, &m.cfgs);
                    quote! {
                        #(#cfgs)*
                        #wire => #krate::__private::method(this, #wire),
                    }
                }),
        );
    }
    (
        quote! {
            #[allow(unused_variables)]
            let this = self;
            match method {
                #(#calls)*
                #connect
                _ => #krate::__private::not_a_function(method),
            }
        },
        quote! {
            #[allow(unused_variables)]
            let this = self;
            match name {
                #(#gets)*
                _ => #krate::__private::undefined(),
            }
        },
    )
}

fn client_name(t: &Target) -> syn::Ident {
    format_ident!("{}Client", t.name)
}

fn promise_name(t: &Target) -> syn::Ident {
    format_ident!("{}Promise", t.name)
}

/// Which generated type a method is made for: the stub, or the promise of one.
#[derive(Clone, Copy, PartialEq)]
enum Receiver {
    Stub,
    Promise,
}

impl Receiver {
    /// Names of methods that a trait always in scope (the prelude's `Into`, `TryInto`, and
    /// `IntoFuture` for the promise) takes by value: Rust looks for a method taking the
    /// receiver by value before one taking it by reference, so a method of ours of that
    /// name takes `self` by value too, or the trait's would be called.
    fn by_value(self, name: &str) -> bool {
        match self {
            Receiver::Stub => matches!(name, "into" | "try_into"),
            Receiver::Promise => matches!(name, "into" | "try_into" | "into_future"),
        }
    }
}

/// The target `T` of a result type written `Stub<T>`, which the typed client returns as
/// a `StubPromise<T>` (by its spelling: `Remote` maps every data type, stubs included, to
/// an `RpcPromise`, and a method of the target must be reachable on the promise).
fn stub_target(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != "Stub" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => match &a.args[0] {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// The type a typed call of `m` returns.
fn call_output(m: &Method, krate: &Path) -> TokenStream {
    if let (Some(ok), Some((err, _))) = (result_type(m), app_error(m)) {
        let k = respan(krate.to_token_stream(), ok.span());
        return quote_spanned!(ok.span()=> #k::TryPromise<<#ok as #k::Remote>::Output, #err>);
    }
    match result_type(m) {
        None => quote!(#krate::RpcPromise<()>),
        Some(ty) => {
            let k = respan(krate.to_token_stream(), ty.span());
            match stub_target(ty) {
                Some(target) => quote_spanned!(ty.span()=> #k::StubPromise<#target>),
                None => quote_spanned!(ty.span()=> <#ty as #k::Remote>::Promise),
            }
        }
    }
}

/// One method of a typed client per RPC method, same arguments, returning a promise: on
/// the stub, a call; on the promise of a stub, a pipelined call.
fn client_methods(t: &Target, on: Receiver) -> Vec<TokenStream> {
    let krate = &t.krate;
    let raw = match on {
        Receiver::Stub => quote!(<Self as #krate::TypedStub>::raw),
        Receiver::Promise => quote!(<Self as #krate::TypedPromise>::raw),
    };
    t.methods
        .iter()
        .filter(|m| m.dispatched)
        .map(|m| {
            let ident = &m.ident;
            let wire = &m.wire;
            let docs = &m.docs;
            let cfgs = &m.cfgs;
            let names: Vec<_> = m
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| param_name(a, i))
                .collect();
            // A `String` parameter takes anything `Into<String>` (a `&str` literal); other types
            // stay as written, so that integer and float literals infer as the parameter's type.
            let params = m.args.iter().zip(&names).map(|(a, p)| {
                let ty = &a.ty;
                if is_string(ty) {
                    quote!(#p: impl ::core::convert::Into<#ty>)
                } else {
                    quote!(#p: #ty)
                }
            });
            let values = m.args.iter().zip(&names).map(|(a, p)| {
                if is_string(&a.ty) {
                    quote!(::core::convert::Into::into(#p))
                } else {
                    p.to_token_stream()
                }
            });
            let mut checks = checks(m, krate);
            if let Some(ty) = result_type(m)
                && let Some(target) = stub_target(ty)
            {
                let k = respan(krate.to_token_stream(), ty.span());
                checks
                    .extend(quote_spanned!(ty.span()=> #k::__private::stub_of::<#ty, #target>();));
            }
            let output = call_output(m, krate);
            let (receiver, this) = if on.by_value(&ident.to_string()) {
                (quote!(self), quote!(#raw(&self)))
            } else {
                (quote!(&self), quote!(#raw(self)))
            };
            let promise = if app_error(m).is_some() {
                quote!(#krate::RpcPromise<_>)
            } else {
                quote!(_)
            };
            let mut body = if m.getter {
                quote!(#krate::__private::get::<#promise>(#this, #wire))
            } else {
                let call = format_ident!("call{}", m.args.len());
                let types = m.args.iter().map(|a| &a.ty);
                quote!(#krate::__private::#call::<#promise, #(#types),*>(#this, #wire, #(#values),*))
            };
            if let Some((err, name)) = app_error(m) {
                body = quote!(#krate::__private::try_call::<_, #err>(#body, #name));
            }
            quote! {
                #(#cfgs)*
                #(#docs)*
                pub fn #ident(#receiver, #(#params),*) -> #output {
                    #checks
                    #body
                }
            }
        })
        .collect()
}

/// The typed client (`Stub<T>`) and the promise of one (`StubPromise<T>`), each with one
/// method per RPC method.
fn client(t: &Target) -> TokenStream {
    let krate = &t.krate;
    let client = client_name(t);
    let promise = promise_name(t);
    let target = &t.name;
    let ty = &t.self_ty;
    let client_doc = format!(
        "The typed client of [`{target}`], named `Stub<{target}>`: its methods are `{target}`'s, each calling the remote object and returning a promise of the result. What every stub has (`raw`, `with_timeout`, `on_broken`, ...) is reached through `capwire::TypedStub`, as associated functions, so that they never hide a method of `{target}`."
    );
    let promise_doc = format!(
        "A promise of a `Stub<{target}>`, named `StubPromise<{target}>`: its methods are `{target}`'s, pipelined (sent before the result is known). `.await` it for the stub. What every such promise has (`with_timeout`, `on_broken`, `pull`, ...) is reached through `capwire::TypedPromise`, as associated functions."
    );
    let stub_methods = client_methods(t, Receiver::Stub);
    let promise_methods = client_methods(t, Receiver::Promise);
    // The client's signatures name `<R as Remote>::Promise`, whose error for a result that
    // is not serde is rustc's own and would come before any error of a body: a check of
    // each result in an array length, which rustc evaluates while checking this item's
    // type (before the signatures after it), puts the custom message first.
    let result_checks = t.methods.iter().filter(|m| m.dispatched).filter_map(|m| {
        let ty = result_type(m)?;
        let cfgs = &m.cfgs;
        let k = respan(krate.to_token_stream(), ty.span());
        Some(quote_spanned! {ty.span()=>
            #(#cfgs)*
            const _: [(); { #k::__private::returned::<#ty>(); 0 }] = [];
        })
    });
    let allow = quote! {
        #[allow(
            dead_code,
            private_interfaces,
            clippy::unused_self,
            clippy::too_many_arguments,
            clippy::wrong_self_convention,
            clippy::should_implement_trait,
            clippy::needless_pass_by_value
        )]
    };
    quote! {
        #(#result_checks)*

        #krate::__private::stub_types! {
            target = #ty,
            #[doc = #client_doc]
            #[allow(dead_code)]
            client = #client,
            #[doc = #promise_doc]
            #[allow(dead_code)]
            promise = #promise,
        }

        #allow
        impl #client {
            #(#stub_methods)*
        }

        #allow
        impl #promise {
            #(#promise_methods)*
        }
    }
}

/// Whether a parameter is a `String` (by its last path segment: `String`,
/// `std::string::String`), which the client takes as `impl Into<String>`.
fn is_string(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "String" && s.arguments.is_empty()),
        _ => false,
    }
}

/// A parameter name for the client's signature: the user's, unless it is `_`-prefixed.
pub(crate) fn param_name(arg: &model::Arg, index: usize) -> syn::Ident {
    match &arg.ident {
        Some(ident) if !ident.to_string().starts_with('_') => ident.clone(),
        _ => format_ident!("arg{}", index),
    }
}

/// `impl RpcObject` with the given bodies of `call` and `get`.
///
/// `call(args)` is the expression that dispatches a call given `args`, an
/// `__private::Args`: `call` passes the values it is given, `call_args` the arguments as
/// they arrived (text, for plain data). It calls a function that is not `RpcObject`'s, so
/// that a type that cannot be an `RpcObject` (not `Sync`, say) gets one error, the impl's.
fn object_impl(
    krate: &Path,
    ty: &Type,
    call: impl Fn(TokenStream) -> TokenStream,
    get: TokenStream,
) -> TokenStream {
    object_impl_with(krate, ty, call, get, TokenStream::new())
}

fn object_impl_with(
    krate: &Path,
    ty: &Type,
    call: impl Fn(TokenStream) -> TokenStream,
    get: TokenStream,
    extra: TokenStream,
) -> TokenStream {
    let from_values = call(quote!(#krate::__private::Args::values(args)));
    let as_arrived = call(quote!(args));
    quote! {
        impl #krate::RpcObject for #ty {
            fn call(
                self: ::std::sync::Arc<Self>,
                method: &str,
                args: ::std::vec::Vec<#krate::Value>,
            ) -> #krate::CallFuture {
                #krate::__private::Answer::into_future({ #from_values })
            }

            fn call_args(
                self: ::std::sync::Arc<Self>,
                method: &str,
                args: #krate::__private::Args,
            ) -> #krate::__private::Answer {
                #as_arrived
            }

            fn get(self: ::std::sync::Arc<Self>, name: &str) -> #krate::CallFuture {
                #krate::__private::Answer::into_future({ #get })
            }

            #extra
        }
    }
}

/// An entrypoint's `fetch`, served for HTTP rather than dispatched as a call.
fn fetch_impl(t: &Target) -> TokenStream {
    let krate = &t.krate;
    let Some(m) = t
        .methods
        .iter()
        .find(|m| !m.dispatched && m.wire == "fetch")
    else {
        return TokenStream::new();
    };
    let ident = &m.ident;
    let cfgs = &m.cfgs;
    let call = if m.is_async {
        quote!(Self::#ident(&*this, request).await)
    } else {
        quote!(Self::#ident(&*this, request))
    };
    quote! {
        #(#cfgs)*
        fn handles_fetch(&self) -> bool {
            true
        }

        #(#cfgs)*
        fn fetch(
            self: ::std::sync::Arc<Self>,
            request: #krate::http::Request<#krate::Body>,
        ) -> #krate::FetchFuture {
            let this = self;
            #krate::__private::fetch_later(async move {
                #krate::__private::IntoFetchResult::into_fetch_result(#call)
            })
        }
    }
}

/// A target type travels by reference: returned, it becomes a stub for the caller.
fn by_reference_impls(krate: &Path, ty: &Type) -> TokenStream {
    quote! {
        impl #krate::Remote for #ty {
            type Output = #krate::Stub<#ty>;
            type Promise = #krate::StubPromise<#ty>;
        }

        impl #krate::IntoReturn for #ty {
            fn into_return(self) -> ::core::result::Result<#krate::Value, #krate::RpcError> {
                #krate::__private::by_reference(self)
            }
        }
    }
}

fn inherent(t: &Target) -> TokenStream {
    let krate = &t.krate;
    let ty = &t.self_ty;
    let (call, get) = dispatch(t, &quote!(Self::), true);
    let object = object_impl_with(
        krate,
        ty,
        |args| quote!(Self::__capwire_dispatch(self, method, #args)),
        get,
        fetch_impl(t),
    );
    let by_reference = by_reference_impls(krate, ty);
    let client = client(t);
    let name = client_name(t);
    let declaration = typescript::declare(t);
    quote! {
        #object

        impl #ty {
            /// The dispatch of `RpcObject::call` and `call_args`: generated, not an API.
            #[doc(hidden)]
            fn __capwire_dispatch(
                self: ::std::sync::Arc<Self>,
                method: &str,
                args: #krate::__private::Args,
            ) -> #krate::__private::Answer {
                #call
            }
        }

        #by_reference

        #client

        /// A target moved into a stub, to travel by reference.
        impl ::core::convert::From<#ty> for #name {
            fn from(target: #ty) -> Self {
                <#name as #krate::TypedStub>::local(target)
            }
        }

        #declaration
    }
}

/// `async fn f(&self, ..) -> R` becomes `fn f(&self, ..) -> BoxFuture<'_, R>` (as
/// async-trait does), so that the interface is object-safe and its futures are `Send`.
fn boxed_future_output(sig: &mut syn::Signature, krate: &Path) {
    if sig.asyncness.take().is_none() {
        return;
    }
    let ret: Type = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    sig.output = syn::parse_quote!(-> #krate::__private::BoxFuture<'_, #ret>);
}

fn boxed_body(block: &syn::Block) -> syn::Block {
    syn::parse_quote!({ ::std::boxed::Box::pin(async move #block) })
}

fn rewrite_trait(tr: &mut syn::ItemTrait, t: &Target) {
    let krate = &t.krate;
    for item in &mut tr.items {
        if let syn::TraitItem::Fn(f) = item {
            let was_async = f.sig.asyncness.is_some();
            boxed_future_output(&mut f.sig, krate);
            if was_async && let Some(block) = &f.default {
                f.default = Some(boxed_body(block));
            }
        }
    }
    tr.supertraits.push(syn::parse_quote!(::core::marker::Send));
    tr.supertraits.push(syn::parse_quote!(::core::marker::Sync));
    tr.supertraits.push(syn::parse_quote!('static));
    let name = &tr.ident;
    let (call, get) = dispatch(t, &quote!(<Self as #name>::), false);
    tr.items.push(syn::parse_quote! {
        #[doc(hidden)]
        fn __capwire_call(
            self: ::std::sync::Arc<Self>,
            method: &str,
            args: #krate::__private::Args,
        ) -> #krate::__private::Answer {
            #call
        }
    });
    tr.items.push(syn::parse_quote! {
        #[doc(hidden)]
        fn __capwire_get(self: ::std::sync::Arc<Self>, name: &str) -> #krate::__private::Answer {
            #get
        }
    });
}

fn rewrite_async_impl(imp: &mut syn::ItemImpl, krate: &Path) {
    for item in &mut imp.items {
        if let syn::ImplItem::Fn(f) = item
            && f.sig.asyncness.is_some()
        {
            boxed_future_output(&mut f.sig, krate);
            f.block = boxed_body(&f.block);
        }
    }
}

fn interface(t: &Target) -> TokenStream {
    let client = client(t);
    let declaration = typescript::declare(t);
    quote! {
        #client

        #declaration
    }
}

fn interface_impl(t: &Target, iface: &Path) -> TokenStream {
    let krate = &t.krate;
    let ty = &t.self_ty;
    let object = object_impl(
        krate,
        ty,
        |args| quote!(<#ty as #iface>::__capwire_call(self, method, #args)),
        quote!(<#ty as #iface>::__capwire_get(self, name)),
    );
    let by_reference = by_reference_impls(krate, ty);
    let declaration = typescript::declare_impl(t, iface);
    quote! {
        #object

        impl #krate::RpcTarget for #ty {
            type Client = <dyn #iface as #krate::RpcTarget>::Client;
            type Promise = <dyn #iface as #krate::RpcTarget>::Promise;
        }

        #by_reference

        #declaration
    }
}
