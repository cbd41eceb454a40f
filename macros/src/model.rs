//! Parse and check: the annotated item becomes a [`Target`], and every problem becomes a
//! spanned error. Code generation only ever sees a model built without errors.

use crate::names;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, Ident, ImplItem, Item, LitStr, Pat, Path, ReturnType, Signature, TraitItem,
    Type,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Target,
    Entrypoint,
}

impl Kind {
    pub fn attr(self) -> &'static str {
        match self {
            Kind::Target => "#[rpc_target]",
            Kind::Entrypoint => "#[entrypoint]",
        }
    }
}

/// Collects errors, so that one compile reports all of them.
#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    pub fn at(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) {
        self.0.push(syn::Error::new_spanned(tokens, msg));
    }

    pub fn span(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, msg));
    }

    pub fn push(&mut self, e: syn::Error) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_compile_errors(self) -> TokenStream {
        self.0.into_iter().map(|e| e.to_compile_error()).collect()
    }
}

/// What the annotation is on.
pub enum Shape {
    /// `impl Type { ... }`: dispatch, client, and `RpcTarget` for `Type`.
    Inherent,
    /// `trait Name { ... }`: an interface; client for `dyn Name`, dispatch as provided
    /// methods of the trait.
    Interface,
    /// `impl Name for Type { ... }`: serves `Type` through the interface `Name`.
    InterfaceImpl(Path),
}

pub struct Target {
    pub shape: Shape,
    /// The type the impl is for (the trait's `dyn Name` for an interface).
    pub self_ty: Type,
    /// The name the client is named after.
    pub name: Ident,
    pub krate: Path,
    pub methods: Vec<Method>,
}

pub struct Method {
    pub ident: Ident,
    pub wire: String,
    pub getter: bool,
    pub is_async: bool,
    pub args: Vec<Arg>,
    pub ret: Ret,
    pub docs: Vec<Attribute>,
}

pub struct Arg {
    /// The name used in error messages.
    pub name: String,
    pub ty: Type,
}

pub enum Ret {
    Unit,
    Value(Type),
    Result(Type),
}

/// Arguments of the attribute itself: `#[rpc_target(crate = "path")]`.
pub fn parse_attr_args(args: TokenStream, errors: &mut Errors) -> Path {
    let mut krate: Path = syn::parse_quote!(::capwire);
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            let lit: LitStr = meta.value()?.parse()?;
            krate = lit.parse()?;
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown argument `{}`, expected `crate`",
                meta.path.to_token_stream()
            )))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        errors.push(e);
    }
    krate
}

/// The method attribute: `#[rpc(getter)]`, `#[rpc(name = "...")]`.
#[derive(Default)]
struct MethodAttr {
    getter: bool,
    name: Option<LitStr>,
    seen: bool,
}

fn parse_method_attrs(attrs: &[Attribute], errors: &mut Errors) -> MethodAttr {
    let mut out = MethodAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("rpc")) {
        out.seen = true;
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("getter") {
                out.getter = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                out.name = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown argument `{}`, expected one of `getter`, `name`",
                    meta.path.to_token_stream()
                )))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

/// Removes `#[rpc(...)]` from the user's item, which is emitted as written otherwise.
pub fn strip_rpc_attrs(attrs: &mut Vec<Attribute>) {
    attrs.retain(|a| !a.path().is_ident("rpc"));
}

fn last_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

/// Replaces `Self` with the target type, for use outside the impl (in the client).
fn replace_self(ty: &Type, self_ty: &Type) -> Type {
    struct Replace<'a>(&'a Type);
    impl syn::visit_mut::VisitMut for Replace<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::Path(p) = ty
                && p.qself.is_none()
                && p.path.is_ident("Self")
            {
                *ty = self.0.clone();
                return;
            }
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Replace(self_ty), &mut ty);
    ty
}

fn check_owned(ty: &Type, what: &str, errors: &mut Errors) {
    match ty {
        Type::Reference(r) => errors.at(
            r,
            format!(
                "{what} is a reference; values cross the wire by value, so use an owned type (for example `String` instead of `&str`)"
            ),
        ),
        Type::ImplTrait(t) => errors.at(t, format!("{what} cannot be `impl Trait`: name a concrete type")),
        Type::BareFn(f) => errors.at(f, format!("{what} cannot be a function pointer")),
        _ => {}
    }
}

/// Checks one method's signature and builds its model. `Ok(None)`: not part of the RPC
/// surface (no receiver).
fn method(
    kind: Kind,
    sig: &Signature,
    attrs: &[Attribute],
    self_ty: &Type,
    errors: &mut Errors,
) -> Option<Method> {
    let attr = parse_method_attrs(attrs, errors);
    let receiver = sig.receiver()?;
    let before = errors.0.len();
    if receiver.reference.is_none() || receiver.colon_token.is_some() {
        errors.at(receiver, "RPC methods take `&self`");
    } else if receiver.mutability.is_some() {
        errors.at(
            receiver,
            "`&mut self` methods cannot be called over RPC: calls run concurrently. Take `&self` and keep state behind interior mutability (a `Mutex`, an atomic)",
        );
    }
    if !sig.generics.params.is_empty() {
        errors.at(
            &sig.generics,
            "RPC methods cannot be generic: the wire carries no type parameters",
        );
    }
    if let Some(u) = &sig.unsafety {
        errors.at(u, "`unsafe` methods cannot be exposed over RPC");
    }
    if let Some(v) = &sig.variadic {
        errors.at(v, "variadic methods cannot be exposed over RPC");
    }
    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate().skip(1) {
        let FnArg::Typed(pt) = input else { continue };
        let name = match &*pt.pat {
            Pat::Ident(p) => p.ident.to_string().trim_start_matches("r#").to_owned(),
            _ => format!("arg{}", i - 1),
        };
        check_owned(&pt.ty, &format!("argument `{name}`"), errors);
        args.push(Arg {
            name,
            ty: (*pt.ty).clone(),
        });
    }
    let ret = match &sig.output {
        ReturnType::Default => Ret::Unit,
        ReturnType::Type(_, ty) => {
            check_owned(ty, "the return type", errors);
            let ty = replace_self(ty, self_ty);
            match result_ok_type(&ty) {
                Some(ok) => Ret::Result(ok),
                None => Ret::Value(ty),
            }
        }
    };
    let wire = match &attr.name {
        Some(lit) => lit.value(),
        None => names::lower_camel(&sig.ident.to_string()),
    };
    let wire_span = attr.name.as_ref().map_or(sig.ident.span(), LitStr::span);
    if wire.is_empty() {
        errors.span(wire_span, "the wire name cannot be empty");
    } else if let Some(why) = names::reserved(&wire) {
        errors.span(
            wire_span,
            format!("`{wire}` cannot be an RPC method name: {why}"),
        );
    }
    if attr.getter && !args.is_empty() {
        errors.at(
            &sig.inputs,
            "a getter is a property read: it takes no arguments besides `&self`",
        );
    }
    if kind == Kind::Entrypoint {
        check_entrypoint_name(sig, &wire, &args, &ret, errors);
    }
    if errors.0.len() > before {
        return None;
    }
    Some(Method {
        ident: sig.ident.clone(),
        wire,
        getter: attr.getter,
        is_async: sig.asyncness.is_some(),
        args,
        ret,
        docs: attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect(),
    })
}

/// `Result<T, E>` (any path ending in `Result` with two arguments, or a one-argument alias
/// such as `RpcResult<T>`): the `T`.
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if !seg.ident.to_string().ends_with("Result") {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

fn check_entrypoint_name(
    sig: &Signature,
    wire: &str,
    args: &[Arg],
    ret: &Ret,
    errors: &mut Errors,
) {
    match wire {
        "fetch" => {
            let takes_request = args.len() == 1 && last_ident(&args[0].ty).is_some_and(|i| i == "Request");
            let returns_response = match ret {
                Ret::Value(t) | Ret::Result(t) => last_ident(t).is_some_and(|i| i == "Response"),
                Ret::Unit => false,
            };
            if !takes_request || !returns_response {
                errors.at(
                    sig,
                    "on an entrypoint, `fetch` handles HTTP: it must take one `http::Request<_>` and return an `http::Response<_>` (or a `Result` of one)",
                );
            }
        }
        "connect" => errors.at(
            &sig.ident,
            "`connect` is reserved on an entrypoint (raw socket connections are not supported over RPC); choose another name",
        ),
        _ => {}
    }
}

fn check_duplicates(methods: &[(Method, Span)], errors: &mut Errors) {
    for (i, (m, span)) in methods.iter().enumerate() {
        if let Some((first, _)) = methods[..i].iter().find(|(o, _)| o.wire == m.wire) {
            errors.span(
                *span,
                format!(
                    "two methods have the wire name `{}`: `{}` and `{}`; rename one or set `#[rpc(name = \"...\")]`",
                    m.wire, first.ident, m.ident
                ),
            );
        }
    }
}

fn wire_span_of(sig: &Signature, attrs: &[Attribute]) -> Span {
    attrs
        .iter()
        .find(|a| a.path().is_ident("rpc"))
        .map_or(sig.ident.span(), |a| a.span())
}

/// Parses and checks the annotated item. Returns the item to emit (with `#[rpc]`
/// attributes removed) and, when there were no errors, the model.
pub fn parse(kind: Kind, krate: Path, item: Item, errors: &mut Errors) -> (Item, Option<Target>) {
    match item {
        Item::Impl(mut imp) => {
            let target = parse_impl(kind, krate, &imp, errors);
            for it in &mut imp.items {
                if let ImplItem::Fn(f) = it {
                    strip_rpc_attrs(&mut f.attrs);
                }
            }
            (Item::Impl(imp), target)
        }
        Item::Trait(mut tr) => {
            let target = parse_trait(kind, krate, &tr, errors);
            for it in &mut tr.items {
                if let TraitItem::Fn(f) = it {
                    strip_rpc_attrs(&mut f.attrs);
                }
            }
            (Item::Trait(tr), target)
        }
        other => {
            errors.at(
                &other,
                format!("{} applies to an `impl` block or a `trait`", kind.attr()),
            );
            (other, None)
        }
    }
}

fn parse_impl(kind: Kind, krate: Path, imp: &syn::ItemImpl, errors: &mut Errors) -> Option<Target> {
    if !imp.generics.params.is_empty() {
        errors.at(
            &imp.generics,
            format!(
                "{} does not support generic impl blocks: each target needs one concrete type (wrap the generic type in a newtype, or declare a trait interface)",
                kind.attr()
            ),
        );
    }
    let Some(name) = last_ident(&imp.self_ty).cloned() else {
        errors.at(
            &imp.self_ty,
            format!("{} needs a named type (a struct or enum)", kind.attr()),
        );
        return None;
    };
    if let Type::Path(p) = &*imp.self_ty
        && let Some(seg) = p.path.segments.last()
        && !seg.arguments.is_empty()
    {
        errors.at(
            &seg.arguments,
            format!("{} does not support generic types", kind.attr()),
        );
    }
    let shape = match &imp.trait_ {
        Some((bang, path, _)) => {
            if bang.is_some() {
                errors.at(path, "negative impls cannot be RPC targets");
            }
            Shape::InterfaceImpl(path.clone())
        }
        None => Shape::Inherent,
    };
    let mut methods = Vec::new();
    for item in &imp.items {
        let ImplItem::Fn(f) = item else { continue };
        let public =
            matches!(f.vis, syn::Visibility::Public(_)) || matches!(shape, Shape::InterfaceImpl(_));
        if !public {
            if f.attrs.iter().any(|a| a.path().is_ident("rpc")) {
                errors.at(
                    &f.sig.ident,
                    "`#[rpc]` on a method that is not `pub`: only `pub` methods are reachable over RPC",
                );
            }
            continue;
        }
        if let Shape::InterfaceImpl(_) = shape {
            // The interface's own declaration decides names and getters; here we only need
            // the bodies to be valid.
            continue;
        }
        let span = wire_span_of(&f.sig, &f.attrs);
        if let Some(m) = method(kind, &f.sig, &f.attrs, &imp.self_ty, errors) {
            methods.push((m, span));
        }
    }
    check_duplicates(&methods, errors);
    Some(Target {
        shape,
        self_ty: (*imp.self_ty).clone(),
        name,
        krate,
        methods: methods.into_iter().map(|(m, _)| m).collect(),
    })
}

fn parse_trait(
    kind: Kind,
    krate: Path,
    tr: &syn::ItemTrait,
    errors: &mut Errors,
) -> Option<Target> {
    if !tr.generics.params.is_empty() {
        errors.at(
            &tr.generics,
            format!("{} does not support generic traits", kind.attr()),
        );
    }
    if kind == Kind::Entrypoint {
        errors.at(
            &tr.ident,
            "#[entrypoint] applies to an impl block; declare an interface with #[rpc_target]",
        );
    }
    let ident = &tr.ident;
    let self_ty: Type = syn::parse_quote!(dyn #ident);
    let mut methods = Vec::new();
    for item in &tr.items {
        match item {
            TraitItem::Fn(f) => {
                if f.sig.receiver().is_none() {
                    errors.at(&f.sig, "an RPC interface's methods take `&self`");
                    continue;
                }
                let span = wire_span_of(&f.sig, &f.attrs);
                if let Some(m) = method(kind, &f.sig, &f.attrs, &self_ty, errors) {
                    methods.push((m, span));
                }
            }
            TraitItem::Type(t) => errors.at(t, "an RPC interface cannot have associated types"),
            TraitItem::Const(c) => {
                errors.at(c, "an RPC interface cannot have associated constants")
            }
            _ => {}
        }
    }
    check_duplicates(&methods, errors);
    Some(Target {
        shape: Shape::Interface,
        self_ty,
        name: tr.ident.clone(),
        krate,
        methods: methods.into_iter().map(|(m, _)| m).collect(),
    })
}
