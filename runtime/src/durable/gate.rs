//! The input gate: a Durable Object runs one call at a time, in the order received, and
//! switches calls only where the running one waits for something outside the object.
//!
//! Each call's future is polled only while it holds its object's gate (a fair semaphore of
//! one permit); between polls, while the call waits on another service or a timer, the gate
//! is free and the next call may run. Storage calls complete within a poll (they are
//! synchronous), so no other call ever runs between a read and the write that follows it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One object's gate.
pub(crate) type Gate = Arc<Semaphore>;

pub(crate) fn new_gate() -> Gate {
    Arc::new(Semaphore::new(1))
}

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// A future polled only while it holds `gate`. It takes its place in line when first
/// polled: calls are served in the order they reach the object.
pub(crate) struct Gated<F> {
    future: Pin<Box<F>>,
    gate: Gate,
    acquiring: Option<Acquire>,
}

impl<F> Gated<F> {
    pub(crate) fn new(gate: Gate, future: F) -> Gated<F> {
        Gated {
            future: Box::pin(future),
            gate,
            acquiring: None,
        }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let acquiring = this
            .acquiring
            .get_or_insert_with(|| Box::pin(this.gate.clone().acquire_owned()));
        let permit = match acquiring.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(permit) => permit,
        };
        this.acquiring = None;
        let result = this.future.as_mut().poll(cx);
        // Released whatever the outcome: while the call waits, others may run.
        drop(permit);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_interleave_only_where_they_wait_outside_the_object() {
        let gate = new_gate();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        for n in 0..20 {
            let log = log.clone();
            calls.push(tokio::spawn(Gated::new(gate.clone(), async move {
                // A read and a write with no wait between: never split by another call.
                log.lock().unwrap().push(format!("read {n}"));
                std::thread::yield_now();
                log.lock().unwrap().push(format!("write {n}"));
                // A wait outside the object lets the others in.
                tokio::task::yield_now().await;
                log.lock().unwrap().push(format!("done {n}"));
            })));
        }
        for c in calls {
            c.await.unwrap();
        }
        let log = log.lock().unwrap();
        for (i, entry) in log.iter().enumerate() {
            if let Some(n) = entry.strip_prefix("read ") {
                assert_eq!(log[i + 1], format!("write {n}"), "{log:?}");
            }
        }
        assert_eq!(log.len(), 60);
    }
}
