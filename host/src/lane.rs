//! Blocking work beside async I/O on one thread, without a thread hop.
//!
//! Guest code blocks (it runs until it answers or its deadline), and WASI's
//! synchronous bindings drive file access on a runtime of their own, which
//! cannot be entered from inside another. So a guest that can reach WASI
//! must be called outside any async runtime, yet handing each event to
//! another thread and back costs more than a small guest's whole call.
//!
//! [`block_on`] runs a future on a single-threaded runtime. Work handed to
//! [`run_blocking`] by a task on it runs on the same thread: work that
//! never enters a runtime ([`Blocking::Plain`]) right in the task's poll,
//! other work after the loop has left the runtime, before it goes back.
//! Where no such loop runs, [`run_blocking`] uses tokio's blocking pool.

use std::{cell::RefCell, future::Future, panic::AssertUnwindSafe, pin::pin};

use tokio::sync::{mpsc, oneshot};

/// Blocking work; gives back how to deliver its result.
type Job = Box<dyn FnOnce() -> Handback + Send>;

/// Delivers a job's result to the task awaiting it. It runs inside the
/// runtime: a task woken from there is queued directly, while a wake from
/// outside must also wake the runtime's driver (a system call, and one
/// more turn of the driver).
type Handback = Box<dyn FnOnce() + Send>;

thread_local! {
    /// The job queue of the loop running on this thread, if one is.
    static LANE: RefCell<Option<mpsc::UnboundedSender<Job>>> = const { RefCell::new(None) };
}

/// What blocking work may do, which decides where it can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocking {
    /// It never enters an async runtime: on the loop's thread it runs in
    /// the poll of the task that hands it over, which then answers without
    /// a turn of the loop.
    Plain,
    /// It may block on an async runtime of its own (WASI's bindings do),
    /// so it must run outside the loop's runtime.
    EntersRuntime,
}

/// The blocking work ended without a result: it panicked.
#[derive(Debug, thiserror::Error)]
#[error("blocking work panicked")]
pub struct Panicked;

/// Runs `work` and waits for its result: on this thread when [`block_on`]
/// drives it (in this poll if it is [`Blocking::Plain`], else between
/// polls, outside the runtime), otherwise on tokio's blocking pool.
pub async fn run_blocking<T: Send + 'static>(
    kind: Blocking,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panicked> {
    let Some(lane) = LANE.with(|lane| lane.borrow().clone()) else {
        return tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Panicked);
    };
    if kind == Blocking::Plain {
        return std::panic::catch_unwind(AssertUnwindSafe(work)).map_err(|_| Panicked);
    }
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move || {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(work));
        Box::new(move || {
            // A panic drops `done`: the waiting task sees `Panicked` and
            // the loop carries on.
            if let Ok(value) = outcome {
                done.send(value).ok();
            }
        })
    });
    if lane.send(job).is_err() {
        return Err(Panicked);
    }
    result.await.map_err(|_| Panicked)
}

/// Runs `future` to completion on `runtime` (single-threaded), running
/// the work its tasks hand to [`run_blocking`] on this thread: plain work
/// in their polls, other work outside the runtime, as it comes.
pub fn block_on<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    let (lane, mut jobs) = mpsc::unbounded_channel::<Job>();
    let previous = LANE.with(|l| l.replace(Some(lane)));
    let mut future = pin!(future);
    let mut handback: Option<Handback> = None;
    let output = loop {
        let next = runtime.block_on(async {
            if let Some(handback) = handback.take() {
                handback();
            }
            tokio::select! {
                biased;
                output = &mut future => Ok(output),
                Some(job) = jobs.recv() => Err(job),
            }
        });
        match next {
            Ok(output) => break output,
            Err(job) => handback = Some(job()),
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
            let task = tokio::spawn(run_blocking(Blocking::EntersRuntime, || {
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
    fn plain_work_runs_in_the_poll_of_its_task() {
        let here = std::thread::current().id();
        let (thread, in_runtime, polls) = block_on(&runtime(), async {
            let task = tokio::spawn(async {
                let mut polls = 0;
                let work = run_blocking(Blocking::Plain, || {
                    (
                        std::thread::current().id(),
                        tokio::runtime::Handle::try_current().is_ok(),
                    )
                });
                let mut work = std::pin::pin!(work);
                let answer = std::future::poll_fn(|cx| {
                    polls += 1;
                    work.as_mut().poll(cx)
                })
                .await
                .unwrap();
                (answer.0, answer.1, polls)
            });
            task.await.unwrap()
        });
        assert_eq!(thread, here);
        assert!(in_runtime);
        assert_eq!(polls, 1, "plain work waited for a turn of the loop");
        let panicked = block_on(&runtime(), async {
            run_blocking(Blocking::Plain, || panic!("a host bug")).await
        });
        assert!(panicked.is_err());
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
                let double = run_blocking(Blocking::EntersRuntime, move || byte * 2);
                answers.push(double.await.unwrap());
            }
            writer.await.unwrap();
            let panicked = run_blocking(Blocking::EntersRuntime, || panic!("a host bug"));
            assert!(panicked.await.is_err());
            answers.push(run_blocking(Blocking::EntersRuntime, || 7).await.unwrap());
            answers
        });
        assert_eq!(answers, [0, 2, 4, 7]);
    }

    #[tokio::test]
    async fn without_a_loop_work_goes_to_the_blocking_pool() {
        let here = std::thread::current().id();
        let there = run_blocking(Blocking::Plain, || std::thread::current().id())
            .await
            .unwrap();
        assert_ne!(there, here);
    }
}
