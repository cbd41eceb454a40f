//! TypeScript declarations of a service, for capnweb clients (the `typescript` feature).
//!
//! With the feature on, every `#[rpc_target]` and `#[entrypoint]` type (and interface
//! trait) describes itself as a TypeScript interface: its wire names, its arguments and
//! results mapped from the Rust types, its getters as `readonly` properties, its doc
//! comments as JSDoc. [`Declarations`] collects them from a set of roots, with every
//! interface and data type they reach, into one `.d.ts` that capnweb's own types accept:
//!
//! ```ts
//! import { newWebSocketRpcSession } from "capnweb";
//! import type { Api } from "./capwire";
//! const api = newWebSocketRpcSession<Api>("ws://127.0.0.1:8787/");
//! const n: number = await api.square(3);
//! ```
//!
//! Data types (serde structs and enums) are described by [ts-rs](https://docs.rs/ts-rs),
//! which honours serde's renames and enum tagging. Derive it through the re-export, so
//! that no second dependency is needed:
//!
//! ```
//! # #[cfg(feature = "typescript")] {
//! use capwire::typescript::{Declarations, TS};
//! use capwire::{RpcError, entrypoint};
//!
//! /// A user record.
//! #[derive(serde::Serialize, serde::Deserialize, TS)]
//! #[ts(crate = "capwire::typescript::ts_rs")]
//! #[serde(rename_all = "camelCase")]
//! pub struct User {
//!     pub id: u32,
//!     pub display_name: String,
//! }
//!
//! pub struct Api;
//!
//! #[entrypoint]
//! impl Api {
//!     /// The user with this ID.
//!     pub fn get_user(&self, id: u32) -> Result<User, RpcError> {
//!         Ok(User { id, display_name: format!("user{id}") })
//!     }
//! }
//!
//! let ts = Declarations::new().add::<Api>().to_string();
//! assert!(ts.contains("export interface Api extends RpcTarget {"));
//! assert!(ts.contains("getUser(id: number): User;"));
//! assert!(ts.contains("export type User = { id: number, displayName: string, };"));
//! # }
//! ```
//!
//! How Rust types map, exactly as the wire carries them:
//!
//! | Rust | TypeScript |
//! |---|---|
//! | `i8`–`i32`, `u8`–`u32`, `f32`, `f64`, `usize`, `isize` | `number` |
//! | `i64`, `u64`, `i128`, `u128` | `number \| bigint` (a number within ±(2⁵³−1), a bigint beyond) |
//! | [`BigInt`](crate::BigInt) | `bigint` |
//! | `String`, `char` | `string` |
//! | `Option<T>` | `T \| null`; a trailing `Option` argument is optional (`x?: T \| null`) |
//! | `()` as a result | `undefined` |
//! | `Vec<T>`, sets, tuples, maps, structs, enums | as ts-rs declares them (serde's attributes honoured) |
//! | [`Bytes`](crate::Bytes) | `Uint8Array` |
//! | [`Date`](crate::Date) | `Date` |
//! | [`Value`](crate::Value) | `unknown` |
//! | a target `T` returned, [`Stub<T>`](crate::Stub) | `T` returned, `RpcStub<T>` elsewhere |
//! | [`RpcStub`](crate::RpcStub) | `RpcStub<any>` |
//! | [`Function<(A, B), R>`](crate::Function) | `RpcStub<(arg0: A, arg1: B) => R>` (`=> void` when `R` is `()`) |
//! | [`RpcPromise<T>`](crate::RpcPromise) | `T` (promises in values are resolved before delivery) |
//! | `bytes::Bytes` in a signature | `Uint8Array` |
//! | [`ReadableStream`](crate::ReadableStream), [`WritableStream`](crate::WritableStream) (of bytes) | `ReadableStream<Uint8Array>`, `WritableStream<Uint8Array>` |
//! | `ReadableStream<T>`, `WritableStream<T>` | `ReadableStream<T>`, `WritableStream<T>` of `T`'s TypeScript type |
//! | [`Blob`](crate::Blob), [`Request`](crate::Request), [`Response`](crate::Response), [`Headers`](crate::Headers), [`Url`](crate::Url) | `Blob`, `Request`, `Response`, `Headers`, `URL` |
//! | `Result<T, E>` as a method's result | `T` (an `Err` rejects the call) |
//!
//! Known gaps of the data-type side (ts-rs's own mapping): `usize`/`isize` fields are
//! `number` although a value beyond 2⁵³−1 would arrive as a bigint, and a `()` field is
//! `null` although it travels as `undefined`; a `bytes::Bytes` field is ts-rs's
//! `Array<number>` although it travels as a `Uint8Array` (use [`Bytes`](crate::Bytes),
//! or `#[ts(type = "Uint8Array")]`).
//!
//! A type in a method's signature that does not implement [`TS`] is declared `unknown`,
//! and [`Declarations::problems`] names it (so [`Declarations::write_to`] refuses it):
//! the feature never makes a program fail to compile.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// The ts-rs crate, for `#[ts(crate = "capwire::typescript::ts_rs")]`.
pub use ts_rs;
/// A type that TypeScript can describe: derive it on the serde types your methods take
/// and return (with `#[ts(crate = "capwire::typescript::ts_rs")]`). The macros implement
/// it for `#[rpc_target]` types.
pub use ts_rs::TS;

/// The file header: where the declarations come from.
const HEADER: &str = "// TypeScript declarations of capwire RPC interfaces, generated from the Rust\n\
// services by capwire::typescript::Declarations. Do not edit: regenerate instead.\n";

/// Names the declarations use for capnweb's and the web platform's types, which a declared
/// type must not take.
const SHADOWED: &[&str] = &[
    "Array",
    "Blob",
    "Date",
    "Error",
    "Headers",
    "ReadableStream",
    "Request",
    "Response",
    "RpcStub",
    "RpcTarget",
    "URL",
    "Uint8Array",
    "WritableStream",
];

/// The TypeScript declarations of a set of roots and of everything they reach: the
/// interfaces of the targets, and the data types of their arguments and results, each
/// once, in the order first reached.
///
/// ```
/// # #[cfg(feature = "typescript")] {
/// use capwire::typescript::Declarations;
///
/// pub struct Counter;
///
/// #[capwire::rpc_target]
/// impl Counter {
///     /// The current value.
///     #[rpc(getter)]
///     pub fn value(&self) -> i64 {
///         0
///     }
/// }
///
/// let ts = Declarations::new().add::<Counter>();
/// assert!(ts.problems().is_empty());
/// assert!(ts.to_string().contains("readonly value: number | bigint;"));
/// # }
/// ```
pub struct Declarations {
    cfg: ts_rs::Config,
    seen: HashSet<TypeId>,
    names: HashMap<String, &'static str>,
    items: Vec<String>,
    problems: Vec<String>,
}

impl Default for Declarations {
    fn default() -> Self {
        Declarations::new()
    }
}

impl Declarations {
    /// No declarations yet.
    pub fn new() -> Self {
        Declarations {
            // capwire sends a wide integer as a number when it fits, a bigint beyond.
            cfg: ts_rs::Config::new().with_large_int("number | bigint"),
            seen: HashSet::new(),
            names: HashMap::new(),
            items: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Adds `T` (a target, or any type implementing [`TS`]) and everything it reaches.
    pub fn add<T: TS + ?Sized + 'static>(mut self) -> Self {
        self.walk::<T>();
        self
    }

    /// What could not be declared exactly: types without a [`TS`] implementation
    /// (declared `unknown`), two types with one TypeScript name, and a type named like a
    /// type the declarations use (`Response`, `RpcStub`, ...). Empty when the
    /// declarations are complete.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Writes the declarations to `path` (creating its directory), unless there are
    /// [`problems`](Self::problems): then nothing is written and the error names them.
    pub fn write_to(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        if !self.problems.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the TypeScript declarations are incomplete:\n  {}",
                    self.problems.join("\n  ")
                ),
            ));
        }
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_string())
    }

    fn walk<T: TS + ?Sized + 'static>(&mut self) {
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        if T::output_path().is_some() {
            let name = T::ident(&self.cfg);
            let rust = std::any::type_name::<T>();
            if SHADOWED.contains(&name.as_str()) {
                self.problems.push(format!(
                    "`{rust}` is named `{name}` in TypeScript, which would shadow the `{name}` the declarations use; rename it"
                ));
            }
            match self.names.get(&name) {
                Some(other) => self.problems.push(format!(
                    "two types are named `{name}` in TypeScript: `{other}` and `{rust}`; rename one (`#[ts(rename = \"...\")]`)"
                )),
                None => {
                    self.names.insert(name, rust);
                }
            }
            let (decl, missing) = collect_missing(|| T::decl(&self.cfg));
            for ty in missing {
                let problem = format!(
                    "`{ty}` (in `{rust}`) has no TypeScript type and is declared `unknown`: derive `capwire::typescript::TS` on it"
                );
                if !self.problems.contains(&problem) {
                    self.problems.push(problem);
                }
            }
            let docs = T::docs().unwrap_or_default();
            // ts-rs leaves a space at the end of some lines.
            let text: Vec<&str> = decl.lines().map(str::trim_end).collect();
            self.items.push(format!("{docs}export {}", text.join("\n")));
        }
        struct Walk<'a>(&'a mut Declarations);
        impl ts_rs::TypeVisitor for Walk<'_> {
            fn visit<U: TS + 'static + ?Sized>(&mut self) {
                self.0.walk::<U>();
            }
        }
        T::visit_dependencies(&mut Walk(self));
    }
}

/// The declarations: a header saying they are generated, the import of the capnweb types
/// they use (only those, so that `noUnusedLocals` holds), then each declaration.
impl fmt::Display for Declarations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HEADER)?;
        let uses = |what: &str| self.items.iter().any(|i| i.contains(what));
        let imports: Vec<&str> = [
            ("RpcStub", "RpcStub<"),
            ("RpcTarget", " extends RpcTarget {"),
        ]
        .into_iter()
        .filter(|(_, used)| uses(used))
        .map(|(name, _)| name)
        .collect();
        if !imports.is_empty() {
            write!(
                f,
                "\nimport type {{ {} }} from \"capnweb\";\n",
                imports.join(", ")
            )?;
        }
        for item in &self.items {
            write!(f, "\n{}\n", item.trim_end())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Declarations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Declarations")
            .field("items", &self.items.len())
            .field("problems", &self.problems)
            .finish()
    }
}

thread_local! {
    /// Types without `TS` met while one declaration is rendered.
    static MISSING: RefCell<Option<Vec<&'static str>>> = const { RefCell::new(None) };
}

fn collect_missing<R>(f: impl FnOnce() -> R) -> (R, Vec<&'static str>) {
    let outer = MISSING.with(|m| m.borrow_mut().replace(Vec::new()));
    let out = f();
    let missing = MISSING.with(|m| std::mem::replace(&mut *m.borrow_mut(), outer));
    (out, missing.unwrap_or_default())
}

/// The name of `T` where a value of it is written (`()` travels as `undefined`, and
/// `bytes::Bytes`, which ts-rs calls an array of numbers, as a `Uint8Array`).
fn name_of<T: TS + ?Sized + 'static>(cfg: &ts_rs::Config) -> String {
    if TypeId::of::<T>() == TypeId::of::<()>() {
        "undefined".to_owned()
    } else if TypeId::of::<T>() == TypeId::of::<bytes::Bytes>() {
        "Uint8Array".to_owned()
    } else {
        T::name(cfg)
    }
}

/// Streams of `T`: `ReadableStream<T>` and `WritableStream<T>` of `T`'s TypeScript type
/// (`Uint8Array` for bytes).
macro_rules! stream_ts {
    ($($ty:ident),*) => {$(
        impl<T: TS + 'static> TS for crate::$ty<T> {
            type WithoutGenerics = Self;
            type OptionInnerType = Self;
            fn name(cfg: &ts_rs::Config) -> String {
                format!(concat!(stringify!($ty), "<{}>"), name_of::<T>(cfg))
            }
            fn inline(cfg: &ts_rs::Config) -> String {
                <Self as TS>::name(cfg)
            }
            fn visit_dependencies(v: &mut impl ts_rs::TypeVisitor)
            where
                Self: 'static,
            {
                <Self as TS>::visit_generics(v);
            }
            fn visit_generics(v: &mut impl ts_rs::TypeVisitor)
            where
                Self: 'static,
            {
                T::visit_generics(v);
                v.visit::<T>();
            }
        }
    )*};
}

stream_ts!(ReadableStream, WritableStream);

/// Implements `TS` for capwire's own leaf types.
macro_rules! leaf {
    ($($ty:ty => $ts:literal),* $(,)?) => {$(
        impl TS for $ty {
            type WithoutGenerics = Self;
            type OptionInnerType = Self;
            fn name(_: &ts_rs::Config) -> String {
                $ts.to_owned()
            }
            fn inline(cfg: &ts_rs::Config) -> String {
                <Self as TS>::name(cfg)
            }
        }
    )*};
}

leaf! {
    crate::Value => "unknown",
    crate::RpcStub => "RpcStub<any>",
    crate::BigInt => "bigint",
    crate::Bytes => "Uint8Array",
    crate::Date => "Date",
    crate::Blob => "Blob",
    crate::Request => "Request",
    crate::Response => "Response",
    crate::Headers => "Headers",
    crate::Url => "URL",
}

/// A promise inside a value reaches its receiver resolved.
impl<T: TS + 'static> TS for crate::RpcPromise<T> {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(cfg: &ts_rs::Config) -> String {
        name_of::<T>(cfg)
    }
    fn inline(cfg: &ts_rs::Config) -> String {
        <Self as TS>::name(cfg)
    }
    fn visit_dependencies(v: &mut impl ts_rs::TypeVisitor)
    where
        Self: 'static,
    {
        T::visit_dependencies(v);
    }
    fn visit_generics(v: &mut impl ts_rs::TypeVisitor)
    where
        Self: 'static,
    {
        T::visit_generics(v);
        v.visit::<T>();
    }
}

/// A function by reference: a stub of a function type, whose parameters are the tuple
/// `A`'s elements.
impl<A: FnParams + 'static, R: TS + 'static> TS for crate::Function<A, R> {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(cfg: &ts_rs::Config) -> String {
        // A function whose result nobody reads is `void` to TypeScript, so that any
        // function, `(x) => { ... }` included, may be passed.
        let result = match name_of::<R>(cfg) {
            undefined if undefined == "undefined" => "void".to_owned(),
            result => result,
        };
        format!(
            "RpcStub<({}) => {result}>",
            private::params(&A::params(cfg)),
        )
    }
    fn inline(cfg: &ts_rs::Config) -> String {
        <Self as TS>::name(cfg)
    }
    fn visit_dependencies(v: &mut impl ts_rs::TypeVisitor)
    where
        Self: 'static,
    {
        <Self as TS>::visit_generics(v);
    }
    fn visit_generics(v: &mut impl ts_rs::TypeVisitor)
    where
        Self: 'static,
    {
        A::visit(v);
        R::visit_generics(v);
        v.visit::<R>();
    }
}

/// The parameter tuple of a [`Function`](crate::Function): `()`, `(A,)`, `(A, B)`, ...,
/// each element implementing [`TS`].
pub trait FnParams {
    /// The parameters, named `arg0`, `arg1`, ...
    #[doc(hidden)]
    fn params(cfg: &ts_rs::Config) -> Vec<private::Param>;
    /// Visits each parameter's type.
    #[doc(hidden)]
    fn visit(v: &mut impl ts_rs::TypeVisitor);
}

macro_rules! fn_params {
    ($($t:ident $i:tt),*) => {
        impl<$($t: TS + 'static),*> FnParams for ($($t,)*) {
            fn params(_cfg: &ts_rs::Config) -> Vec<private::Param> {
                vec![$(private::Param {
                    name: concat!("arg", stringify!($i)),
                    ty: name_of::<$t>(_cfg),
                    option: <$t as TS>::IS_OPTION,
                }),*]
            }
            fn visit(_v: &mut impl ts_rs::TypeVisitor) {
                $(
                    <$t as TS>::visit_generics(_v);
                    _v.visit::<$t>();
                )*
            }
        }
    };
}

fn_params!();
fn_params!(A 0);
fn_params!(A 0, B 1);
fn_params!(A 0, B 1, C 2);
fn_params!(A 0, B 1, C 2, D 3);
fn_params!(A 0, B 1, C 2, D 3, E 4);
fn_params!(A 0, B 1, C 2, D 3, E 4, F 5);
fn_params!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
fn_params!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// What generated code needs; not a public API.
#[doc(hidden)]
pub mod private {
    use super::*;

    pub use ts_rs::{Config, TS, TypeVisitor};

    /// The TypeScript name of a stub of `T` (a `Stub<T>`, by reference): capnweb's
    /// `RpcStub` of its interface.
    pub fn stub_name<T: TS + ?Sized>(cfg: &Config) -> String {
        format!("RpcStub<{}>", T::name(cfg))
    }

    /// Stands for the type `T` of a signature, so that generated code can ask for its
    /// TypeScript name whether or not `T` implements `TS` (through [`Known`] when it does,
    /// [`Unknown`] otherwise: the methods of `Probe<T>` win over those of `&Probe<T>`).
    pub struct Probe<T: ?Sized>(std::marker::PhantomData<fn() -> Box<T>>);

    impl<T: ?Sized> Probe<T> {
        /// The probe.
        pub const NEW: Self = Probe(std::marker::PhantomData);
    }

    /// A signature's type that implements `TS`.
    pub trait Known {
        fn ty(&self, cfg: &Config) -> String;
        fn is_option(&self) -> bool;
        fn visit(&self, v: &mut impl TypeVisitor);
    }

    impl<T: TS + ?Sized + 'static> Known for Probe<T> {
        fn ty(&self, cfg: &Config) -> String {
            name_of::<T>(cfg)
        }
        fn is_option(&self) -> bool {
            T::IS_OPTION
        }
        fn visit(&self, v: &mut impl TypeVisitor) {
            T::visit_generics(v);
            v.visit::<T>();
        }
    }

    /// A signature's type without `TS`: `unknown`, and a problem of the declarations.
    pub trait Unknown {
        fn ty(&self, cfg: &Config) -> String;
        fn is_option(&self) -> bool;
        fn visit(&self, v: &mut impl TypeVisitor);
    }

    impl<T: ?Sized> Unknown for &Probe<T> {
        fn ty(&self, _: &Config) -> String {
            MISSING.with(|m| {
                if let Some(m) = m.borrow_mut().as_mut() {
                    m.push(std::any::type_name::<T>());
                }
            });
            "unknown".to_owned()
        }
        fn is_option(&self) -> bool {
            false
        }
        fn visit(&self, _: &mut impl TypeVisitor) {}
    }

    /// One parameter of a method or function.
    pub struct Param {
        pub name: &'static str,
        pub ty: String,
        /// An `Option`: `null` and `undefined` read as `None`, and when it is trailing it
        /// may be left out.
        pub option: bool,
    }

    /// `a: A, b?: B | null`: trailing `Option`s are optional, as a missing trailing
    /// argument reads as `None`; other `Option`s also take `undefined`.
    pub fn params(params: &[Param]) -> String {
        let trailing = params.iter().rev().take_while(|p| p.option).count();
        let first_optional = params.len() - trailing;
        params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let name = ident(p.name);
                if i >= first_optional {
                    format!("{name}?: {}", p.ty)
                } else if p.option {
                    format!("{name}: {} | undefined", p.ty)
                } else {
                    format!("{name}: {}", p.ty)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A method of an interface.
    pub fn method(docs: &[&str], wire: &str, params: &[Param], ret: String) -> String {
        format!(
            "{}  {}({}): {ret};",
            jsdoc(docs, "  "),
            property(wire),
            self::params(params)
        )
    }

    /// A getter: a property read on the wire.
    pub fn getter(docs: &[&str], wire: &str, ty: String) -> String {
        format!("{}  readonly {}: {ty};", jsdoc(docs, "  "), property(wire))
    }

    /// `interface Name extends RpcTarget { ... }`: a target, which capnweb's types pass by
    /// reference (a stub), with pipelining on its methods and getters.
    pub fn interface(name: &str, members: Vec<String>) -> String {
        let mut out = format!("interface {name} extends RpcTarget {{\n");
        for m in members {
            out.push_str(&m);
            out.push('\n');
        }
        out.push('}');
        out
    }

    /// The JSDoc of doc comments (`///` lines, each `#[doc]` one line or more).
    pub fn jsdoc(docs: &[&str], indent: &str) -> String {
        let lines: Vec<&str> = docs.iter().flat_map(|d| d.split('\n')).collect();
        let lines = trim_blank(&lines);
        if lines.is_empty() {
            return String::new();
        }
        let mut out = format!("{indent}/**\n");
        for line in lines {
            let line = line.strip_prefix(' ').unwrap_or(line).replace("*/", "*\\/");
            let line = line.trim_end();
            if line.is_empty() {
                out.push_str(&format!("{indent} *\n"));
            } else {
                out.push_str(&format!("{indent} * {line}\n"));
            }
        }
        out.push_str(&format!("{indent} */\n"));
        out
    }

    fn trim_blank<'a, 'b>(lines: &'a [&'b str]) -> &'a [&'b str] {
        let start = lines
            .iter()
            .position(|l| !l.trim().is_empty())
            .unwrap_or(lines.len());
        let end = lines
            .iter()
            .rposition(|l| !l.trim().is_empty())
            .map_or(start, |i| i + 1);
        &lines[start..end]
    }

    /// A property name: as is when it is an identifier, quoted otherwise.
    fn property(wire: &str) -> String {
        if is_identifier(wire) {
            wire.to_owned()
        } else {
            format!("{wire:?}")
        }
    }

    fn is_identifier(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    }

    /// A parameter name: the Rust name, unless JavaScript reserves it.
    fn ident(name: &str) -> String {
        const RESERVED: &[&str] = &[
            "arguments",
            "case",
            "catch",
            "class",
            "const",
            "debugger",
            "default",
            "delete",
            "do",
            "else",
            "enum",
            "eval",
            "export",
            "extends",
            "false",
            "finally",
            "for",
            "function",
            "if",
            "implements",
            "import",
            "in",
            "instanceof",
            "interface",
            "let",
            "new",
            "null",
            "package",
            "private",
            "protected",
            "public",
            "return",
            "static",
            "super",
            "switch",
            "this",
            "throw",
            "true",
            "try",
            "typeof",
            "var",
            "void",
            "while",
            "with",
            "yield",
        ];
        if RESERVED.contains(&name) {
            format!("{name}_")
        } else {
            name.to_owned()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn p(name: &'static str, ty: &str, option: bool) -> Param {
            Param {
                name,
                ty: ty.to_owned(),
                option,
            }
        }

        #[test]
        fn only_trailing_options_are_optional() {
            let ps = [
                p("a", "number | null", true),
                p("b", "string", false),
                p("c", "number | null", true),
                p("d", "bigint | null", true),
            ];
            assert_eq!(
                params(&ps),
                "a: number | null | undefined, b: string, c?: number | null, d?: bigint | null"
            );
        }

        #[test]
        fn reserved_names_and_odd_wire_names_are_escaped() {
            assert_eq!(
                method(&[], "x-y", &[p("new", "number", false)], "undefined".into()),
                "  \"x-y\"(new_: number): undefined;"
            );
        }

        #[test]
        fn doc_comments_become_jsdoc() {
            assert_eq!(
                jsdoc(&[" First line.", "", " Ends */ here."], "  "),
                "  /**\n   * First line.\n   *\n   * Ends *\\/ here.\n   */\n"
            );
            assert_eq!(jsdoc(&["", " "], ""), "");
        }
    }
}
