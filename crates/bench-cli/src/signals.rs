//! SIGINT and SIGTERM for the binary only: the runner never handles signals, so that it can run
//! inside another program (the Python package), which owns its process's signals.

use std::sync::{Arc, Mutex};

use bench_core::CancelToken;

use crate::exit_codes;
use crate::progress::Checkpoint;

/// Watches for signals on a thread of its own while a run goes on: the first cancels the run
/// (the engine returns what it measured), a second writes the current checkpoint and exits at
/// once. Stops watching when dropped.
pub(crate) struct Watch {
    checkpoint: Arc<Mutex<Option<Arc<Checkpoint>>>>,
    done: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    pub(crate) fn start(cancel: CancelToken) -> Self {
        let checkpoint: Arc<Mutex<Option<Arc<Checkpoint>>>> = Arc::default();
        let done = CancelToken::new();
        let (slot, stop) = (checkpoint.clone(), done.clone());
        let thread = std::thread::Builder::new()
            .name("signals".to_owned())
            .spawn(move || watch(&cancel, &slot, &stop))
            .map_err(|error| {
                tracing::warn!("cannot watch for SIGINT and SIGTERM ({error}); an interrupt will not save a partial report");
            })
            .ok();
        Self {
            checkpoint,
            done,
            thread,
        }
    }

    /// The report files a second signal writes before exiting.
    pub(crate) fn on_exit(&self, checkpoint: Arc<Checkpoint>) {
        *self.checkpoint.lock().unwrap_or_else(|p| p.into_inner()) = Some(checkpoint);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.done.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(cancel: &CancelToken, checkpoint: &Mutex<Option<Arc<Checkpoint>>>, done: &CancelToken) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!("cannot watch for SIGINT and SIGTERM ({error}); an interrupt will not save a partial report");
            return;
        }
    };
    runtime.block_on(async {
        tokio::select! {
            signal = wait_for_signal() => {
                if let Err(error) = signal {
                    tracing::warn!("cannot listen for SIGINT and SIGTERM ({error}); an interrupt will not save a partial report");
                    return;
                }
            }
            () = done.cancelled() => return,
        }
        tracing::warn!("interrupted: stopping the run and writing what was measured (interrupt again to exit at once)");
        cancel.cancel();
        tokio::select! {
            _ = wait_for_signal() => {
                tracing::warn!("second interrupt: exiting without waiting for the engine; the report files hold the benchmarks finished so far");
                if let Some(checkpoint) = checkpoint.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    checkpoint.write();
                }
                std::process::exit(i32::from(exit_codes::INTERRUPTED));
            }
            () = done.cancelled() => {}
        }
    });
}

/// Completes at the first SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
