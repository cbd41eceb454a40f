//! What the benchmarks share: running a routine as a task and recording the time of each
//! of criterion's samples, for the summaries they print after criterion's own report.

use futures::FutureExt;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// `(benchmark, iterations, elapsed)` for every routine run, warm-up included.
static RUNS: Mutex<Vec<(String, u64, Duration)>> = Mutex::new(Vec::new());

fn record(name: &str, iters: u64, elapsed: Duration) {
    RUNS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((name.to_owned(), iters, elapsed));
}

/// Mean time per iteration over the last `samples` runs of `name`: criterion calls the
/// routine once per measurement sample after the warm-up, so these are its samples.
pub fn per_iteration(name: &str, samples: usize) -> Option<Duration> {
    let runs = RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mine: Vec<_> = runs.iter().filter(|(n, ..)| n == name).collect();
    if mine.len() < samples {
        return None;
    }
    let (iters, elapsed) = mine[mine.len() - samples..]
        .iter()
        .fold((0u64, Duration::ZERO), |(i, e), (_, n, d)| (i + n, e + *d));
    Some(elapsed.div_f64(iters as f64))
}

/// Runs `routine(iters)` as a task on the runtime (so client code runs on the worker
/// threads, like application code) and records the time it reports.
pub fn timed<F, Fut>(
    name: &'static str,
    routine: F,
) -> impl FnMut(u64) -> BoxFuture<'static, Duration>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Duration> + Send + 'static,
{
    move |iters| {
        let routine = routine.clone();
        async move {
            let elapsed = tokio::spawn(routine(iters))
                .await
                .expect("benchmark task panicked");
            record(name, iters, elapsed);
            elapsed
        }
        .boxed()
    }
}
