//! Blocking work beside async I/O on one thread, without a thread hop.
//!
//! Guest code blocks (it runs until it answers or its deadline), and WASI's
//! synchronous bindings drive file access on a runtime of their own, which
//! cannot be entered from inside another. So guest calls must run outside
//! any async runtime, yet handing each event to another thread and back
//! costs more than a small guest's whole call.
//!
//! [`block_on`] runs a future on a single-threaded runtime and, whenever a
//! task on it hands over blocking work with [`run_blocking`], leaves the
//! runtime, runs the work on the same thread, and goes back. Where no such
//! loop runs, [`run_blocking`] uses tokio's blocking pool.

use std::{cell::RefCell, future::Future, panic::AssertUnwindSafe, pin::pin};

use tokio::sync::{mpsc, oneshot};

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// The job queue of the loop running on this thread, if one is.
    static LANE: RefCell<Option<mpsc::UnboundedSender<Job>>> = const { RefCell::new(None) };
}

/// The blocking work ended without a result: it panicked.
#[derive(Debug, thiserror::Error)]
#[error("blocking work panicked")]
pub struct Panicked;

/// Runs `work` outside the async runtime and waits for its result: on
/// this thread between polls when [`block_on`] drives it, else on tokio's
/// blocking pool.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panicked> {
    let Some(lane) = LANE.with(|lane| lane.borrow().clone()) else {
        return tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Panicked);
    };
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        // A panic drops `done`: the waiting task sees `Panicked` and the
        // loop carries on.
        if let Ok(value) = std::panic::catch_unwind(AssertUnwindSafe(work)) {
            done.send(value).ok();
        }
    });
    if lane.send(job).is_err() {
        return Err(Panicked);
    }
    result.await.map_err(|_| Panicked)
}

/// Runs `future` to completion on `runtime` (single-threaded), running
/// the work its tasks hand to [`run_blocking`] on this thread, outside the
/// runtime, as it comes.
pub fn block_on<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    let (lane, mut jobs) = mpsc::unbounded_channel::<Job>();
    let previous = LANE.with(|l| l.replace(Some(lane)));
    let mut future = pin!(future);
    let output = loop {
        let next = runtime.block_on(async {
            tokio::select! {
                biased;
                output = &mut future => Ok(output),
                Some(job) = jobs.recv() => Err(job),
            }
        });
        match next {
            Ok(output) => break output,
            Err(job) => job(),
        }
    };
    LANE.with(|l| l.replace(previous));
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn work_runs_on_the_loop_thread_outside_the_runtime() {
        let here = std::thread::current().id();
        let (thread, in_runtime) = block_on(&runtime(), async {
            let task = tokio::spawn(run_blocking(|| {
                (
                    std::thread::current().id(),
                    tokio::runtime::Handle::try_current().is_ok(),
                )
            }));
            task.await.unwrap().unwrap()
        });
        assert_eq!(thread, here);
        assert!(!in_runtime, "blocking work ran inside the runtime");
    }

    #[test]
    fn io_and_timers_progress_between_jobs_and_a_panic_is_reported() {
        let answers = block_on(&runtime(), async {
            let (mut a, mut b) = tokio::io::duplex(64);
            let writer = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                for byte in 0..3u8 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    a.write_all(&[byte]).await.unwrap();
                }
            });
            let mut answers = Vec::new();
            for _ in 0..3 {
                use tokio::io::AsyncReadExt;
                let byte = b.read_u8().await.unwrap();
                answers.push(run_blocking(move || byte * 2).await.unwrap());
            }
            writer.await.unwrap();
            assert!(run_blocking(|| panic!("a host bug")).await.is_err());
            answers.push(run_blocking(|| 7).await.unwrap());
            answers
        });
        assert_eq!(answers, [0, 2, 4, 7]);
    }

    #[tokio::test]
    async fn without_a_loop_work_goes_to_the_blocking_pool() {
        let here = std::thread::current().id();
        let there = run_blocking(|| std::thread::current().id()).await.unwrap();
        assert_ne!(there, here);
    }
}
