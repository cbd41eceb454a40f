//! Parse and check: the annotated item becomes a [`Target`], and every problem becomes a
//! spanned error. Code generation only ever sees a model built without errors.

use crate::names;
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
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
    pub kind: Kind,
    pub shape: Shape,
    /// The type the impl is for (the trait's `dyn Name` for an interface).
    pub self_ty: Type,
    /// The name the client is named after.
    pub name: Ident,
    pub krate: Path,
    pub methods: Vec<Method>,
    /// The doc comments of the impl block or trait.
    pub docs: Vec<Attribute>,
}

pub struct Method {
    pub ident: Ident,
    /// Where errors about the whole method point: its `fn` signature.
    pub span: Span,
    /// `#[cfg]` attributes, repeated on everything generated for the method.
    pub cfgs: Vec<Attribute>,
    /// Not dispatched (yet): `fetch` on an entrypoint is served by the worker host.
    pub dispatched: bool,
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
    /// The user's binding, when it is a plain identifier (kept as written, `r#` included).
    pub ident: Option<Ident>,
    pub ty: Type,
}

pub enum Ret {
    Unit,
    Value(Box<Type>),
    /// `Result<T, E>`: the `T` and the `E` (absent for a one-argument alias).
    Result(Box<Type>, Option<Box<Type>>),
}

/// Arguments of the attribute itself: `#[rpc_target(crate = "path")]`. Without `crate`,
/// the path is the name the crate being compiled gives its `capwire` dependency.
pub fn parse_attr_args(args: TokenStream, errors: &mut Errors) -> Path {
    let mut krate: Option<Path> = None;
    let mut seen_crate = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            if seen_crate {
                return Err(meta.error("duplicate argument `crate`"));
            }
            seen_crate = true;
            let lit: LitStr = meta.value()?.parse()?;
            krate = Some(lit.parse().map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    "`crate` must name a path, such as `\"capwire\"` or `\"my_crate::capwire\"`",
                )
            })?);
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
    krate.unwrap_or_else(runtime_path)
}

/// `::name` for the name the crate being compiled gives its `capwire` dependency in its
/// `Cargo.toml` (`rpc = { package = "capwire", .. }` gives `::rpc`), found with
/// `proc-macro-crate`.
///
/// `::capwire` when the crate is the `capwire` package itself (its doc tests, examples and
/// benches see the library as the extern crate `capwire`; the library does not use its own
/// macros), and when the manifest cannot be read or names no `capwire` (a crate depending
/// on `capwire-macros` directly, a build outside Cargo): then `crate = "..."` says where the
/// runtime is.
fn runtime_path() -> Path {
    use proc_macro_crate::FoundCrate;
    match proc_macro_crate::crate_name("capwire") {
        Ok(FoundCrate::Name(name)) => match syn::parse_str::<Ident>(&name) {
            Ok(ident) => syn::parse_quote!(::#ident),
            Err(_) => syn::parse_quote!(::capwire),
        },
        Ok(FoundCrate::Itself) | Err(_) => syn::parse_quote!(::capwire),
    }
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
        if out.seen {
            errors.at(
                attr,
                "more than one `#[rpc(...)]` on one method: put all arguments in one",
            );
        }
        out.seen = true;
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("getter") {
                if out.getter {
                    return Err(meta.error("duplicate argument `getter`"));
                }
                out.getter = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                if out.name.is_some() {
                    return Err(meta.error("duplicate argument `name`"));
                }
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

/// The most arguments a method may take: the typed client's `__private::call16`.
const MAX_ARGS: usize = 16;

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
    let Some(receiver) = sig.receiver() else {
        if attr.seen {
            errors.at(
                &sig.ident,
                "`#[rpc]` on a function without `self`: only methods are reachable over RPC",
            );
        }
        return None;
    };
    let before = errors.0.len();
    if receiver.colon_token.is_some() {
        errors.at(
            receiver,
            "RPC methods take `&self` (not a typed receiver such as `self: Arc<Self>`)",
        );
    } else if receiver.reference.is_none() {
        errors.at(
            receiver,
            "RPC methods take `&self`: taking `self` by value would consume the object on the first call",
        );
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
        let (name, ident) = match &*pt.pat {
            Pat::Ident(p) => (
                p.ident.to_string().trim_start_matches("r#").to_owned(),
                Some(p.ident.clone()),
            ),
            _ => (format!("arg{}", i - 1), None),
        };
        check_owned(&pt.ty, &format!("argument `{name}`"), errors);
        args.push(Arg {
            name,
            ident,
            ty: (*pt.ty).clone(),
        });
    }
    if args.len() > MAX_ARGS {
        errors.at(
            &sig.inputs,
            format!("an RPC method takes at most {MAX_ARGS} arguments besides `&self` (as many as serde encodes in a tuple); group them in a struct"),
        );
    }
    let ret = match &sig.output {
        ReturnType::Default => Ret::Unit,
        ReturnType::Type(_, ty) => {
            check_owned(ty, "the return type", errors);
            let ty = replace_self(ty, self_ty);
            match result_types(&ty) {
                Some((ok, err)) => Ret::Result(Box::new(ok), err.map(Box::new)),
                None => Ret::Value(Box::new(ty)),
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
        check_entrypoint_name(sig, &wire, attr.name.is_some(), &args, &ret, errors);
    }
    if errors.0.len() > before {
        return None;
    }
    Some(Method {
        ident: sig.ident.clone(),
        span: sig.fn_token.span,
        cfgs: attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
            .cloned()
            .collect(),
        dispatched: !(kind == Kind::Entrypoint && wire == "fetch"),
        wire,
        getter: attr.getter,
        is_async: sig.asyncness.is_some(),
        args,
        ret,
        docs: doc_attrs(attrs),
    })
}

/// `Result<T, E>` or a one-argument `Result<T>` alias (as `io::Result`): the `T` and the
/// `E`. Only a type named `Result` counts, so a `SearchResult<T>` is data.
fn result_types(ty: &Type) -> Option<(Type, Option<Type>)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    Some((types.next()?, types.next()))
}

fn check_entrypoint_name(
    sig: &Signature,
    wire: &str,
    renamed: bool,
    args: &[Arg],
    ret: &Ret,
    errors: &mut Errors,
) {
    match wire {
        "fetch" => {
            let takes_request = args.len() == 1 && last_ident(&args[0].ty).is_some_and(|i| i == "Request");
            let returns_response = match ret {
                Ret::Value(t) | Ret::Result(t, _) => last_ident(t).is_some_and(|i| i == "Response"),
                Ret::Unit => false,
            };
            if !takes_request || !returns_response {
                let via = if renamed { " (this method is named `fetch` on the wire by `#[rpc(name)]`)" } else { "" };
                errors.at(
                    sig,
                    format!("on an entrypoint, `fetch` handles HTTP: it must take one `http::Request<_>` and return an `http::Response<_>` (or a `Result` of one){via}"),
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

/// Where a method's wire name is written: its `name = "..."` literal, or its identifier.
fn wire_span_of(sig: &Signature, attrs: &[Attribute]) -> Span {
    let mut span = sig.ident.span();
    for attr in attrs.iter().filter(|a| a.path().is_ident("rpc")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                span = lit.span();
            } else if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            }
            Ok(())
        });
    }
    span
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
            let what = match kind {
                Kind::Target => "an `impl` block or a `trait`",
                Kind::Entrypoint => "an `impl` block",
            };
            let head = item_head(&other);
            errors.at(head, format!("{} applies to {what}", kind.attr()));
            (other, None)
        }
    }
}

/// The tokens that name an item (`struct Foo`, `fn foo`), for a short error span.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(s) => {
            let (t, i) = (&s.struct_token, &s.ident);
            quote::quote!(#t #i)
        }
        Item::Enum(e) => {
            let (t, i) = (&e.enum_token, &e.ident);
            quote::quote!(#t #i)
        }
        Item::Fn(f) => {
            let (t, i) = (&f.sig.fn_token, &f.sig.ident);
            quote::quote!(#t #i)
        }
        other => other.to_token_stream(),
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
        && imp.generics.params.is_empty()
    {
        errors.at(
            &seg.arguments,
            format!(
                "{} does not support generic types: wrap `{}` in a newtype and annotate the newtype's impl",
                kind.attr(),
                p.to_token_stream().to_string().replace(' ', "")
            ),
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
            // The interface's own declaration decides names and getters.
            if let Some(a) = f.attrs.iter().find(|a| a.path().is_ident("rpc")) {
                errors.at(a, "`#[rpc(...)]` belongs on the interface's declaration (the trait), not on its implementation");
            }
            continue;
        }
        let span = wire_span_of(&f.sig, &f.attrs);
        if let Some(m) = method(kind, &f.sig, &f.attrs, &imp.self_ty, errors) {
            methods.push((m, span));
        }
    }
    check_duplicates(&methods, errors);
    Some(Target {
        kind,
        shape,
        self_ty: (*imp.self_ty).clone(),
        name,
        krate,
        methods: methods.into_iter().map(|(m, _)| m).collect(),
        docs: doc_attrs(&imp.attrs),
    })
}

fn doc_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
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
        kind,
        shape: Shape::Interface,
        self_ty,
        name: tr.ident.clone(),
        krate,
        methods: methods.into_iter().map(|(m, _)| m).collect(),
        docs: doc_attrs(&tr.attrs),
    })
}
