//! Evaluating expressions from the peer into values, and running `map()` mappers (the
//! `remap` expression) over them.
//!
//! Literal forms evaluate the same everywhere; what an ID means depends on the [`Scope`]:
//! at the top level of a message it is an entry of the session's tables, inside a mapper
//! it is the mapper's input, a capture, or the result of an earlier instruction.

use crate::error::{ProtocolError, RpcError};
use crate::limits::Limits;
use crate::stream::{ReadableStream, WritableStream};
use crate::stub::{Hook, RpcPromise, RpcStub, is_prototype_name, resolve_promises};
use crate::value::{BigInt, Bytes, Date, Object, Value};
use crate::value::{Overrun, count_nodes};
use crate::wire::{Capture, ErrorExpr, Expr, PathKey, RemapExpr};
use std::sync::Arc;

/// What the IDs of an expression refer to.
pub(crate) trait Scope {
    /// What ID `id` of this scope names: the target of `["import", id, …]` and
    /// `["pipeline", id, …]`, the subject of a `remap`, an `["import", id]` capture.
    fn hook(&mut self, id: i64) -> Result<Hook, ProtocolError>;

    /// A capability the sender introduces: `["export", id]` (`promise` false),
    /// `["promise", id]` (true), or an `["export", id]` capture.
    fn introduce(&mut self, id: i64, promise: bool) -> Result<Hook, ProtocolError>;

    /// `["readable", id]`: the readable end of pipe `id`.
    fn readable(&mut self, id: i64) -> Result<ReadableStream, ProtocolError>;

    /// `["writable", id]`: a writable stream the sender exports.
    fn writable(&mut self, id: i64) -> Result<WritableStream, ProtocolError>;

    /// The largest `Blob` accepted.
    fn max_blob_size(&self) -> usize {
        usize::MAX
    }

    /// The limits mappers sent in this scope run under.
    fn limits(&self) -> Limits {
        Limits::default()
    }

    /// `["import", id, path?, args?]` (`pipeline` false) or `["pipeline", …]` (true).
    fn reference(
        &mut self,
        id: i64,
        path: Option<Vec<PathKey>>,
        args: Option<Vec<Value>>,
        pipeline: bool,
    ) -> Result<Value, ProtocolError> {
        Ok(reference_value(&self.hook(id)?, path, args, pipeline))
    }
}

/// Evaluates `expr` in `scope`.
pub(crate) fn evaluate(expr: Expr, scope: &mut dyn Scope) -> Result<Value, ProtocolError> {
    Ok(match expr {
        Expr::Null => Value::Null,
        Expr::Bool(b) => Value::Bool(b),
        Expr::Number(n) => Value::Number(n),
        Expr::String(s) => Value::String(s),
        Expr::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|e| evaluate(e, scope))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Object(fields) => Value::Object(Box::new(evaluate_fields(fields, &[], scope)?)),
        Expr::Undefined => Value::Undefined,
        Expr::Inf => Value::Number(f64::INFINITY),
        Expr::NegInf => Value::Number(f64::NEG_INFINITY),
        Expr::NaN => Value::Number(f64::NAN),
        Expr::BigInt(d) => {
            Value::BigInt(BigInt::parse(&d).map_err(|e| ProtocolError::Invalid(e.to_string()))?)
        }
        Expr::Date(ms) => Value::Date(Date::from_millis(ms.unwrap_or(f64::NAN))),
        Expr::Bytes { data, kind } => Value::Bytes(Bytes {
            data: data.into(),
            kind: kind.filter(|k| k != "Uint8Array"),
        }),
        Expr::Error(e) => {
            let ErrorExpr {
                name,
                message,
                stack,
                props,
            } = *e;
            let props = match props {
                Some(fields) => Some(evaluate_fields(
                    fields,
                    &["name", "message", "stack"],
                    scope,
                )?)
                .filter(|o| !o.is_empty()),
                None => None,
            };
            Value::Error(RpcError::from_parts(name, message, stack, props))
        }
        Expr::Import { id, path, args } => {
            let args = evaluate_args(args, scope)?;
            scope.reference(id, path, args, false)?
        }
        Expr::Pipeline { id, path, args } => {
            let args = evaluate_args(args, scope)?;
            scope.reference(id, path, args, true)?
        }
        Expr::Export(id) => Value::Stub(RpcStub::from_hook(scope.introduce(id, false)?)),
        Expr::Promise(id) => {
            Value::Promise(Box::new(RpcPromise::from_hook(scope.introduce(id, true)?)))
        }
        Expr::Url(u) => Value::Url(u),
        Expr::Headers(h) => Value::Headers(h),
        Expr::Remap(r) => {
            let RemapExpr {
                id,
                path,
                captures,
                instructions,
            } = *r;
            let subject = scope.hook(id)?;
            let captures = captures
                .into_iter()
                .map(|c| match c {
                    Capture::Import(id) => scope.hook(id),
                    Capture::Export(id) => scope.introduce(id, false),
                })
                .collect::<Result<_, _>>()?;
            let limits = scope.limits();
            Value::from(RpcPromise::<Value>::from_hook(map(
                subject,
                path,
                Arc::new(Mapper {
                    captures,
                    instructions,
                    max_work: limits.max_map_work,
                    max_depth: limits.max_depth,
                }),
            )))
        }
        Expr::Readable(id) => Value::Readable(scope.readable(id)?),
        Expr::Writable(id) => Value::Writable(scope.writable(id)?),
        Expr::Blob { mime, content } => {
            let limit = scope.max_blob_size();
            crate::value::web::received_blob(mime, evaluate(*content, scope)?, limit)?
        }
        Expr::Request { url, body, init } => {
            let body = body.map(|b| evaluate(*b, scope)).transpose()?;
            Value::Request(Box::new(crate::value::web::Request::from_wire(
                url, body, &init,
            )?))
        }
        Expr::Response { body, init } => {
            let body = evaluate(*body, scope)?;
            Value::Response(Box::new(crate::value::web::Response::from_wire(
                body, &init,
            )?))
        }
    })
}

/// An object's fields. Like capnweb, a peer never plants names that shadow built-ins
/// (`toJSON`, `Object.prototype`'s), nor any of `skip`.
fn evaluate_fields(
    fields: Vec<(String, Expr)>,
    skip: &[&str],
    scope: &mut dyn Scope,
) -> Result<Object, ProtocolError> {
    let mut o = Object::with_capacity(fields.len());
    for (k, v) in fields {
        let v = evaluate(v, scope)?;
        if k != "toJSON" && !is_prototype_name(&k) && !skip.contains(&k.as_str()) {
            o.insert(k, v);
        }
    }
    Ok(o)
}

fn evaluate_args(
    args: Option<Vec<Expr>>,
    scope: &mut dyn Scope,
) -> Result<Option<Vec<Value>>, ProtocolError> {
    args.map(|a| a.into_iter().map(|e| evaluate(e, scope)).collect())
        .transpose()
}

/// The hook a value stands for when used as a variable or an export: stubs and promises
/// are their hooks, plain values are ready (once the promises inside them are).
pub(crate) fn hook_of(value: Value) -> Hook {
    match value {
        Value::Promise(p) => p.hook,
        Value::Stub(s) => s.hook,
        plain if plain.has_promises() => Hook::start(resolve_promises(plain)),
        plain => Hook::ready(Ok(plain)),
    }
}

/// The value a reference to `hook` evaluates to, after an optional call or property read.
pub(crate) fn reference_value(
    hook: &Hook,
    path: Option<Vec<PathKey>>,
    args: Option<Vec<Value>>,
    pipeline: bool,
) -> Value {
    match (path, args, pipeline) {
        (None, None, false) => Value::Stub(RpcStub::from_hook(hook.clone())),
        (path, args, false) => {
            Value::Stub(RpcStub::from_hook(hook.op(&path.unwrap_or_default(), args)))
        }
        (path, args, true) => Value::from(RpcPromise::<Value>::from_hook(
            hook.op(&path.unwrap_or_default(), args),
        )),
    }
}

/// A mapper sent by a `remap`: instructions run once per input, with the captured hooks.
pub(crate) struct Mapper {
    pub(crate) captures: Vec<Hook>,
    pub(crate) instructions: Vec<Expr>,
    /// Most work one map may do in all (`Limits::max_map_work`): an instruction run, and
    /// each node of a value it produces, count one.
    pub(crate) max_work: usize,
    /// Deepest value an instruction may produce (`Limits::max_depth`).
    pub(crate) max_depth: usize,
}

/// The result of `subject.path.map(mapper)`: once the subject is known, the mapper runs for
/// each element of an array, not at all for `null`/`undefined` (passed through), and once
/// for any other value.
pub(crate) fn map(subject: Hook, path: Vec<PathKey>, mapper: Arc<Mapper>) -> Hook {
    let input = if path.is_empty() {
        subject
    } else {
        subject.op(&path, None)
    };
    let input = input.resolve();
    Hook::start(async move {
        // What the whole map may still do, across all its inputs.
        let mut work = mapper.max_work;
        let results = match input.await? {
            Value::Array(items) => {
                let mut results = Vec::new();
                for item in items {
                    results.push(mapper.run(item, &mut work)?);
                }
                Value::Array(results)
            }
            nullish @ (Value::Null | Value::Undefined) => return Ok(nullish),
            other => mapper.run(other, &mut work)?,
        };
        resolve_promises(results).await
    })
}

/// The error for a map that would do more than `limit` work.
fn too_much_work(limit: usize) -> RpcError {
    RpcError::range(format!(
        "map() would do more than {limit} units of work (limit max_map_work)"
    ))
}

impl Mapper {
    /// Runs the instructions on one input; the last one's value is the result. Calls are
    /// started, not awaited. `work` is what the map may still do; each instruction, and
    /// each node of what it produces, takes one.
    fn run(&self, input: Value, work: &mut usize) -> Result<Value, RpcError> {
        let Some((last, rest)) = self.instructions.split_last() else {
            return Err(RpcError::error("Invalid empty mapper function."));
        };
        let mut scope = MapperScope {
            mapper: self,
            variables: vec![hook_of(input)],
            work,
        };
        for instruction in rest {
            let value = scope.run(instruction)?;
            scope.variables.push(hook_of(value));
        }
        scope.run(last)
    }
}

/// IDs inside a mapper: 0 is the input, `k > 0` the result of instruction `k`, `-k`
/// capture `k`.
struct MapperScope<'a> {
    mapper: &'a Mapper,
    variables: Vec<Hook>,
    work: &'a mut usize,
}

impl MapperScope<'_> {
    /// Evaluates one instruction, counting it and what it produces against the map's work.
    fn run(&mut self, instruction: &Expr) -> Result<Value, RpcError> {
        self.spend(1)?;
        let value = evaluate(instruction.clone(), self)?;
        let nodes = self.measure(&value)?;
        self.spend(nodes)?;
        Ok(value)
    }

    /// The nodes of `value`, if it fits in what is left of the work and the depth limit.
    fn measure(&self, value: &Value) -> Result<usize, RpcError> {
        count_nodes(value, *self.work, self.mapper.max_depth).map_err(|e| match e {
            Overrun::Nodes => too_much_work(self.mapper.max_work),
            Overrun::Depth => crate::session::codec::too_deep(self.mapper.max_depth),
        })
    }

    fn spend(&mut self, units: usize) -> Result<(), RpcError> {
        match self.work.checked_sub(units) {
            Some(left) => {
                *self.work = left;
                Ok(())
            }
            None => Err(too_much_work(self.mapper.max_work)),
        }
    }
}

impl MapperScope<'_> {
    fn variable(&self, id: i64) -> Result<&Hook, ProtocolError> {
        let found = if id < 0 {
            usize::try_from(-(id + 1))
                .ok()
                .and_then(|k| self.mapper.captures.get(k))
        } else {
            usize::try_from(id).ok().and_then(|k| self.variables.get(k))
        };
        found.ok_or_else(|| mapper_error(format!("no such entry on exports table: {id}")))
    }
}

/// A mapper that cannot run rejects the map's result (a plain `Error`, as capnweb's).
fn mapper_error(message: impl Into<String>) -> ProtocolError {
    ProtocolError::Session(RpcError::error(message))
}

fn no_exports() -> ProtocolError {
    mapper_error("A mapper function cannot refer to exports.")
}

impl Scope for MapperScope<'_> {
    fn hook(&mut self, id: i64) -> Result<Hook, ProtocolError> {
        self.variable(id).cloned()
    }

    fn introduce(&mut self, _id: i64, _promise: bool) -> Result<Hook, ProtocolError> {
        Err(no_exports())
    }

    fn readable(&mut self, _id: i64) -> Result<ReadableStream, ProtocolError> {
        Err(mapper_error("A mapper function cannot use pipe readables."))
    }

    fn writable(&mut self, _id: i64) -> Result<WritableStream, ProtocolError> {
        Err(no_exports())
    }

    fn reference(
        &mut self,
        id: i64,
        path: Option<Vec<PathKey>>,
        args: Option<Vec<Value>>,
        pipeline: bool,
    ) -> Result<Value, ProtocolError> {
        let hook = self.variable(id)?;
        Ok(match (hook, &path, &args) {
            // A plain variable read whole is its value: a copy, checked against the work
            // left before it is made.
            (Hook::Ready(v), None, None) => {
                self.measure(v).map_err(ProtocolError::Session)?;
                Value::clone(v)
            }
            _ => reference_value(hook, path, args, pipeline),
        })
    }
}

/// Evaluates an expression that may hold no references at all.
pub(crate) struct Detached;

impl Scope for Detached {
    fn hook(&mut self, _: i64) -> Result<Hook, ProtocolError> {
        Err(detached())
    }
    fn introduce(&mut self, _: i64, _: bool) -> Result<Hook, ProtocolError> {
        Err(detached())
    }
    fn readable(&mut self, _: i64) -> Result<ReadableStream, ProtocolError> {
        Err(detached())
    }
    fn writable(&mut self, _: i64) -> Result<WritableStream, ProtocolError> {
        Err(detached())
    }
}

fn detached() -> ProtocolError {
    ProtocolError::Session(RpcError::type_error(
        "Cannot deserialize RPC stubs without an RPC session.",
    ))
}
