//! The SDK's one tokio runtime, created lazily on first use and shared by every keeper.
//!
//! Foreign languages drive exported futures with their own executors (Kotlin coroutines,
//! Swift tasks, Python asyncio). Core futures need tokio (timers, reqwest), so every async
//! export hands its work to this runtime with [`run`] and awaits the join handle, which any
//! executor can poll. Nothing here calls `block_on` from a foreign thread.

use std::future::Future;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::TokenKeeperError;

/// Worker threads of the SDK runtime. Token work is tiny and mostly waiting: two threads keep
/// timers and fetches moving without taking a phone's cores.
pub const DEFAULT_WORKER_THREADS: usize = 2;

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// A handle to the SDK runtime, which is built on first call.
///
/// # Errors
/// [`TokenKeeperError::Internal`] when the OS refuses to start the runtime's threads.
pub(crate) fn handle() -> Result<Handle, TokenKeeperError> {
    let mut slot = RUNTIME.lock();
    if let Some(rt) = slot.as_ref() {
        return Ok(rt.handle().clone());
    }
    let rt = Builder::new_multi_thread()
        .worker_threads(DEFAULT_WORKER_THREADS)
        .thread_name("tokenkeeper")
        .enable_all()
        .build()
        .map_err(|e| TokenKeeperError::Internal {
            reason: format!("cannot start the tokenkeeper runtime: {e}"),
        })?;
    let handle = rt.handle().clone();
    *slot = Some(rt);
    Ok(handle)
}

/// Stops the SDK's runtime at process exit, waiting up to `timeout` for its tasks to end, so
/// that no SDK thread calls into the host (releasing a host object, logging) while the host
/// language tears itself down. Every keeper and session stops working; do not use them after.
/// The Python package calls this from `atexit`. Does nothing if the runtime never started.
#[uniffi::export]
pub fn shutdown_runtime(timeout: Duration) {
    let Some(rt) = RUNTIME.lock().take() else {
        return;
    };
    if Handle::try_current().is_ok() {
        // A runtime cannot be dropped from inside an async context: do it on a plain thread.
        let _ = std::thread::spawn(move || rt.shutdown_timeout(timeout)).join();
    } else {
        rt.shutdown_timeout(timeout);
    }
}

/// Runs `work` on the SDK runtime and waits for its result from any executor.
///
/// A panic inside `work` is re-raised here, so uniffi reports it to the host as an internal
/// error exactly as it would for a synchronous call. When the host cancels the call (a
/// cancelled coroutine or task drops this future), the spawned work is aborted too.
pub(crate) async fn run<F, T>(work: F) -> Result<T, TokenKeeperError>
where
    F: Future<Output = Result<T, TokenKeeperError>> + Send + 'static,
    T: Send + 'static,
{
    let mut task = AbortOnDrop(handle()?.spawn(work));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(TokenKeeperError::Closed {
            reason: "the tokenkeeper runtime shut down while the call was running".into(),
        }),
    }
}

/// Aborts the spawned task if the awaiting future is dropped before it finished.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
