//! `map()` from Rust: a mapper closure runs once, here, on a placeholder; the calls it
//! makes are recorded as instructions and sent to the peer in one `remap`, which runs them
//! for each element where the value lives: one round trip for the whole map.

use crate::error::RpcError;
use crate::session::codec::{Capability, encode};
use crate::session::eval::{Mapper, map};
use crate::stub::{Hook, RpcPromise};
use crate::value::Value;
use crate::wire::{Expr, PathKey};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

thread_local! {
    /// The mapper being recorded on this thread, if any.
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// Instructions and captures of a mapper being recorded.
#[derive(Default)]
struct Recording {
    instructions: Vec<Expr>,
    captures: Vec<Hook>,
    /// Capture index by target identity: a stub used twice is captured once.
    seen: HashMap<usize, usize>,
}

impl Recording {
    /// The mapper-table ID of `hook`: a placeholder's own, or a (new) capture's.
    fn id_of(&mut self, hook: &Hook) -> i64 {
        if let Hook::Recorded(id) = hook {
            return *id;
        }
        let key = hook.identity();
        let index = match key.and_then(|k| self.seen.get(&k)) {
            Some(&i) => i,
            None => {
                self.captures.push(hook.clone());
                let i = self.captures.len() - 1;
                if let Some(k) = key {
                    self.seen.insert(k, i);
                }
                i
            }
        };
        -(index as i64) - 1
    }

    fn encode(&mut self, value: &Value) -> Result<Expr, RpcError> {
        encode(
            value,
            crate::Limits::default().max_depth,
            &mut |capability| {
                let hook = match capability {
                    Capability::Stub(hook) | Capability::Promise(hook) => hook,
                    Capability::Readable(_) | Capability::Writable(_) => {
                        return Err(RpcError::type_error(
                            "A mapper function cannot send streams.",
                        ));
                    }
                };
                let id = self.id_of(hook);
                Ok(if matches!(hook, Hook::Recorded(_)) {
                    Expr::Pipeline {
                        id,
                        path: None,
                        args: None,
                    }
                } else {
                    Expr::Import {
                        id,
                        path: None,
                        args: None,
                    }
                })
            },
        )
    }

    /// Records a call or property read on `hook`; the result is a placeholder for it.
    fn record(&mut self, hook: &Hook, path: &[PathKey], args: Option<Vec<Value>>) -> Hook {
        let id = self.id_of(hook);
        let args = match args
            .map(|a| {
                a.iter()
                    .map(|v| self.encode(v))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
        {
            Ok(args) => args,
            Err(e) => return Hook::Error(e),
        };
        self.instructions.push(Expr::Pipeline {
            id,
            path: Some(path.to_vec()),
            args,
        });
        Hook::Recorded(self.instructions.len() as i64)
    }
}

/// While a mapper is being recorded, a call or read on any stub or promise is recorded
/// instead of made: `Some(placeholder)`.
pub(crate) fn intercept(
    hook: &Hook,
    path: &[PathKey],
    args: Option<Vec<Value>>,
) -> Result<Hook, Option<Vec<Value>>> {
    RECORDING.with(|r| match r.borrow_mut().as_mut() {
        Some(recording) => Ok(recording.record(hook, path, args)),
        None => Err(args),
    })
}

/// The error for a placeholder used where a real value is needed.
pub(crate) fn placeholder_error() -> RpcError {
    RpcError::type_error(
        "a map() placeholder was used outside its mapper, or awaited: a mapper only records \
         calls and property reads, it cannot look at values",
    )
}

/// Ends the recording even if the mapper panics.
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        RECORDING.with(|r| r.borrow_mut().take());
    }
}

/// Runs `mapper` on a placeholder and returns the recorded instructions and captures.
fn record<E, U: serde::Serialize>(
    mapper: impl FnOnce(RpcPromise<E>) -> U,
) -> Result<Mapper, RpcError> {
    let nested = RECORDING.with(|r| {
        let mut r = r.borrow_mut();
        let nested = r.is_some();
        if !nested {
            *r = Some(Recording::default());
        }
        nested
    });
    if nested {
        return Err(RpcError::type_error(
            "map() inside a Rust mapper is not supported; map the inner value separately",
        ));
    }
    let _guard = Guard;
    let result = crate::to_value(&mapper(RpcPromise::from_hook(Hook::Recorded(0))))?;
    RECORDING.with(|r| {
        let mut recording = r.borrow_mut().take().expect("recording was set above");
        let last = recording.encode(&result)?;
        recording.instructions.push(last);
        let limits = crate::Limits::default();
        Ok(Mapper {
            captures: recording.captures,
            instructions: recording.instructions,
            max_work: limits.max_map_work,
            max_depth: limits.max_depth,
        })
    })
}

impl<T> RpcPromise<T> {
    /// Applies `mapper` to the promised value where it lives: to each element of an array,
    /// once to any other value, not at all to `null` or `undefined` (which pass through).
    /// The whole map costs one round trip, like capnweb's `.map()`.
    ///
    /// `mapper` runs once, here, on a placeholder of the element: it may call methods and
    /// read properties of the placeholder and of stubs it captures, and return a value
    /// built from the results (a promise, a tuple, a struct, a [`Value`]). Those calls are
    /// recorded, not made, and the peer replays them per element. So a mapper must not look
    /// at values, await, or have side effects; awaiting a placeholder fails.
    ///
    /// ```
    /// # use capwire::RpcStub;
    /// # async fn demo(api: RpcStub) -> Result<(), capwire::RpcError> {
    /// #[derive(serde::Deserialize)]
    /// struct User { id: u32, name: String }
    /// let users: Vec<User> = api
    ///     .call("listIds", (3,))
    ///     .map(|id: capwire::RpcPromise| api.call("getUser", (id,)))
    ///     .typed()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn map<E, U, F>(&self, mapper: F) -> RpcPromise
    where
        F: FnOnce(RpcPromise<E>) -> U,
        U: serde::Serialize,
    {
        let mapper = match record(mapper) {
            Ok(m) => m,
            Err(e) => return RpcPromise::rejected(e),
        };
        let mapper = match &self.hook {
            Hook::Import(import) => match import.remap(mapper) {
                Ok(sent) => return RpcPromise::from_hook(sent),
                Err(settled) => settled,
            },
            _ => mapper,
        };
        // The value is here: replay the mapper locally.
        RpcPromise::from_hook(map(self.hook.clone(), Vec::new(), Arc::new(mapper)))
    }
}
