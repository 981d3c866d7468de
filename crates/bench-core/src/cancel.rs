//! A runtime-agnostic cancellation token.
//!
//! bench-core names no async runtime, so it cannot hand out tokio's token. This one is a flag
//! plus the wakers of the tasks that wait on it; engines may poll [`CancelToken::is_cancelled`]
//! in hot loops and `.await` [`CancelToken::cancelled`] in `select!`s. Thousands of requests
//! may wait on one token at once: registering, re-polling and dropping a waiter are O(1).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Cloneable; every clone sees the same cancellation.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    waiters: Mutex<Waiters>,
}

/// The wakers of pending [`Cancelled`] futures, by the key each future holds.
#[derive(Debug, Default)]
struct Waiters {
    next_key: u64,
    wakers: HashMap<u64, Waker>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop. Idempotent.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let waiters = std::mem::take(&mut self.lock_waiters().wakers);
        for waker in waiters.into_values() {
            waker.wake();
        }
    }

    /// Whether [`CancelToken::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the token is cancelled (at once if it already is).
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled {
            token: self,
            key: None,
        }
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        // A panic while holding this lock cannot leave the waker list inconsistent.
        self.inner
            .waiters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The future returned by [`CancelToken::cancelled`].
#[derive(Debug)]
pub struct Cancelled<'a> {
    token: &'a CancelToken,
    /// This future's entry among the waiters, once registered.
    key: Option<u64>,
}

impl Future for Cancelled<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.token.is_cancelled() {
            return Poll::Ready(());
        }
        let token = self.token;
        let mut waiters = token.lock_waiters();
        // Check again under the lock: `cancel` may have drained the waiters in between.
        if token.is_cancelled() {
            return Poll::Ready(());
        }
        match self.key {
            Some(key) => match waiters.wakers.get_mut(&key) {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                Some(waker) => *waker = cx.waker().clone(),
                None => {
                    waiters.wakers.insert(key, cx.waker().clone());
                }
            },
            None => {
                let key = waiters.next_key;
                waiters.next_key += 1;
                waiters.wakers.insert(key, cx.waker().clone());
                drop(waiters);
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.token.lock_waiters().wakers.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn cancel_wakes_a_pending_waiter_and_clones_share_state() {
        let token = CancelToken::new();
        let clone = token.clone();
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(clone.cancelled());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        token.cancel();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert!(clone.is_cancelled());
    }

    #[test]
    fn dropped_waiters_leave_nothing_behind() {
        let token = CancelToken::new();
        let waker = Waker::from(Arc::new(CountingWaker(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..1000 {
            let mut fut = std::pin::pin!(token.cancelled());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert!(
                fut.as_mut().poll(&mut cx).is_pending(),
                "a second poll reuses the entry"
            );
        }
        assert!(token.lock_waiters().wakers.is_empty());
    }
}
