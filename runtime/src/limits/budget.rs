//! Memory budgets: bytes held on a peer's behalf, counted against named limits.
//!
//! Budgets form a chain: a session's stream buffer counts against the session's memory,
//! which counts against the server's. A charge succeeds only if every budget of the chain
//! has room; the first one that has not is remembered, so that the session can end with an
//! `abort` naming it. Figures are approximate by design (the encoded size of a message as
//! a proxy for what it holds): what matters is that they grow with what a peer makes us
//! hold, and are given back when it is let go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// A named limit and what is counted against it.
pub(crate) struct Budget {
    /// The name of the limit, as users set it (`max_session_memory`, ...).
    name: &'static str,
    limit: usize,
    used: AtomicUsize,
    parent: Option<Arc<Budget>>,
    /// The first budget of the chain a charge found full.
    exceeded: OnceLock<Exceeded>,
}

/// A budget that was found full: its name and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub(crate) name: &'static str,
    pub(crate) limit: usize,
}

/// Bytes counted against a [`Budget`] (and its parents) until dropped.
pub(crate) struct Charge(Arc<Budget>, usize);

impl Budget {
    pub(crate) fn new(
        name: &'static str,
        limit: usize,
        parent: Option<Arc<Budget>>,
    ) -> Arc<Budget> {
        Arc::new(Budget {
            name,
            limit,
            used: AtomicUsize::new(0),
            parent,
            exceeded: OnceLock::new(),
        })
    }

    /// Counts `n` more bytes against this budget and its parents, unless one of them would
    /// pass its limit: then nothing is counted, and the full one is remembered (here and in
    /// every budget below it) and returned.
    pub(crate) fn try_add(&self, n: usize) -> Result<(), Exceeded> {
        let used = self.used.fetch_add(n, Ordering::AcqRel).saturating_add(n);
        let result = if used > self.limit {
            Err(Exceeded {
                name: self.name,
                limit: self.limit,
            })
        } else {
            match &self.parent {
                Some(parent) => parent.try_add(n),
                None => Ok(()),
            }
        };
        if let Err(e) = result {
            self.used.fetch_sub(n, Ordering::AcqRel);
            let _ = self.exceeded.set(e);
        }
        result
    }

    /// Counts `n` bytes whatever the limits (for what must go anyway, an `abort`).
    pub(crate) fn force_add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
        if let Some(parent) = &self.parent {
            parent.force_add(n);
        }
    }

    /// Gives back `n` bytes counted by [`Budget::try_add`].
    pub(crate) fn sub(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
        if let Some(parent) = &self.parent {
            parent.sub(n);
        }
    }

    /// Counts `n` bytes until the returned charge is dropped; `None` if a budget of the
    /// chain is full (see [`Budget::try_add`]).
    pub(crate) fn charge(self: &Arc<Self>, n: usize) -> Option<Charge> {
        self.try_add(n).ok().map(|()| Charge(self.clone(), n))
    }

    /// The first budget a charge found full, if any ever did.
    pub(crate) fn exceeded_budget(&self) -> Option<Exceeded> {
        self.exceeded.get().copied()
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Bytes counted now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

impl Drop for Budget {
    /// What is still counted here (raw counts never given back, from a session that
    /// ended) leaves the parents with it.
    fn drop(&mut self) {
        if let Some(parent) = &self.parent {
            parent.sub(*self.used.get_mut());
        }
    }
}

impl Charge {
    /// Counts `n` more bytes in this charge; `false` (and nothing counted) if the chain is
    /// full.
    pub(crate) fn grow(&mut self, n: usize) -> bool {
        let ok = self.0.try_add(n).is_ok();
        if ok {
            self.1 += n;
        }
        ok
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.0.sub(self.1);
    }
}

/// A rough measure of the memory a value holds: a fixed cost per node plus the bytes of
/// its strings and buffers. Walks iteratively (a value may be deep), and stops counting
/// once past `cap`.
pub(crate) fn value_size(value: &crate::Value, cap: usize) -> usize {
    use crate::Value;
    // A scalar (most results) is measured without the walk's stack.
    if !matches!(value, Value::Array(_) | Value::Object(_) | Value::Error(_)) {
        return own_size(value);
    }
    let mut total = 0usize;
    let mut stack: Vec<&Value> = vec![value];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(own_size(v));
        match v {
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => {
                for (k, v) in o.iter() {
                    total = total.saturating_add(k.len() + 2 * std::mem::size_of::<usize>());
                    stack.push(v);
                }
            }
            Value::Error(e) => {
                for (k, v) in e.props().into_iter().flat_map(|props| props.iter()) {
                    total = total.saturating_add(k.len() + 2 * std::mem::size_of::<usize>());
                    stack.push(v);
                }
            }
            _ => {}
        }
        if total > cap {
            return total;
        }
    }
    total
}

/// What one value node holds by itself, without the values inside it.
fn own_size(value: &crate::Value) -> usize {
    use crate::Value;
    const NODE: usize = std::mem::size_of::<Value>();
    NODE.saturating_add(match value {
        Value::String(s) | Value::Url(s) => s.len(),
        Value::Bytes(b) => b.data.len(),
        Value::Headers(h) => h.iter().map(|(k, v)| k.len() + v.len()).sum(),
        Value::Blob(b) => b.len(),
        Value::Error(e) => e.name().len() + e.message().len() + e.stack().map_or(0, str::len),
        Value::Request(r) => {
            r.url.len() + header_map_size(&r.headers) + r.body.as_ref().map_or(0, |b| b.buffered())
        }
        Value::Response(r) => {
            r.status_text.len()
                + header_map_size(&r.headers)
                + r.body.as_ref().map_or(0, |b| b.buffered())
        }
        _ => 0,
    })
}

/// The bytes of a header map's names and values, with a word of overhead each.
fn header_map_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 2 * std::mem::size_of::<usize>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_requests_and_responses_count_what_they_hold() {
        use crate::Value;
        let node = value_size(&Value::Null, usize::MAX);
        let long = "z".repeat(10_000);
        let error = crate::RpcError::error(long.clone());
        assert!(value_size(&Value::Error(error), usize::MAX) >= node + 10_000);
        let error = crate::RpcError::error("short").with_prop("detail", long.clone());
        assert!(value_size(&Value::Error(error), usize::MAX) >= 2 * node + 10_000);
        let mut request = crate::Request::new(http::Method::POST, "https://a.example/");
        request.headers.insert("x-big", long.parse().unwrap());
        request.body = Some(crate::ReadableStream::from_bytes(long.clone()));
        let size = value_size(&Value::Request(Box::new(request)), usize::MAX);
        assert!(size >= node + 20_000, "headers and the inline body: {size}");
        let mut response = crate::Response::new(http::StatusCode::OK);
        response.body = Some(crate::ReadableStream::from_bytes(long));
        let size = value_size(&Value::Response(Box::new(response)), usize::MAX);
        assert!(size >= node + 10_000, "the inline body: {size}");
    }

    #[test]
    fn a_charge_counts_along_the_chain_until_dropped() {
        let server = Budget::new("max_memory", 100, None);
        let a = Budget::new("max_session_memory", 80, Some(server.clone()));
        let b = Budget::new("max_session_memory", 80, Some(server.clone()));
        let first = a.charge(60).expect("room in both");
        assert_eq!((a.used(), server.used()), (60, 60));
        // b has room of its own, but the server has not.
        assert!(b.charge(50).is_none());
        assert_eq!(
            b.exceeded_budget(),
            Some(Exceeded {
                name: "max_memory",
                limit: 100
            })
        );
        assert_eq!((b.used(), server.used()), (0, 60));
        assert!(a.charge(30).is_none(), "a's own limit");
        assert_eq!(
            a.exceeded_budget().map(|e| e.name),
            Some("max_session_memory")
        );
        drop(first);
        assert_eq!((a.used(), server.used()), (0, 0));
        assert!(b.charge(50).is_some());
    }

    #[test]
    fn value_size_grows_with_the_value_and_stops_at_the_cap() {
        let small = value_size(&crate::Value::from(1), usize::MAX);
        let list = crate::Value::from((0..1000).collect::<Vec<i32>>());
        let big = value_size(&list, usize::MAX);
        assert!(big >= 1000 * small, "{big} vs {small}");
        assert!(value_size(&list, 10 * small) < big);
        let text = crate::Value::from("x".repeat(10_000));
        assert!(value_size(&text, usize::MAX) >= 10_000);
    }
}
