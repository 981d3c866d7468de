//! bench-timer: a precise timer inside a tokio runtime.
//!
//! tokio's timer wheel rounds every sleep up to the next millisecond (its reactor waits in
//! `epoll_wait`, which counts milliseconds), too coarse for inter-token gaps and
//! request schedules. This timer keeps a heap of deadlines and arms one Linux `timerfd` (a high-resolution
//! kernel timer, no timer slack) at the earliest; the reactor wakes on it like on a socket, and
//! a task on the same runtime wakes every due task. No extra thread, no hand-off between
//! threads. Deadlines are absolute, so lateness never accumulates. [`Pacer`] meets a schedule
//! of deadlines more tightly than a sleep, spinning only briefly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

mod pacer;

pub use pacer::{Pacer, DUE};

/// A handle to the timer; clones share it.
#[derive(Debug, Clone)]
pub struct Timer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    heap: Mutex<Heap>,
    fd: AsyncFd<OwnedFd>,
    stopped: AtomicBool,
    stop: Notify,
}

#[derive(Debug, Default)]
struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    /// The deadline the timerfd is armed for, if any.
    armed: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    deadline: Instant,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.deadline.cmp(&other.deadline)
    }
}

impl Timer {
    /// Creates the timerfd and spawns the task that serves it; call inside a tokio runtime.
    pub fn start() -> std::io::Result<Self> {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // `AsyncFd::new` is deprecated for types whose descriptor may outlive them; an `OwnedFd`
        // owns its descriptor and closes it on drop (after the registration), so it is sound
        // here, and the safe call keeps this crate free of `unsafe`.
        #[expect(
            deprecated,
            reason = "sound for OwnedFd; the replacement is an unsafe fn"
        )]
        let fd = AsyncFd::new(fd)?;
        let shared = Arc::new(Shared {
            heap: Mutex::new(Heap::default()),
            fd,
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
        });
        tokio::spawn(run(shared.clone()));
        Ok(Self { shared })
    }

    /// Wakes `waker` at `deadline` (at once if it has passed).
    pub fn wake_at(&self, deadline: Instant, waker: Waker) {
        if self.shared.stopped.load(Ordering::Relaxed) {
            waker.wake();
            return;
        }
        let mut heap = lock(&self.shared.heap);
        heap.entries.push(Reverse(Entry { deadline, waker }));
        if heap.armed.is_none_or(|armed| deadline < armed) {
            heap.armed = Some(deadline);
            arm(&self.shared.fd, deadline);
        }
    }

    /// A future that completes at `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            timer: self.clone(),
            deadline,
        }
    }

    /// Stops the task; pending wakers are woken so nothing waits forever.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.shared.stop.notify_one();
        let entries = std::mem::take(&mut lock(&self.shared.heap).entries);
        for Reverse(entry) in entries {
            entry.waker.wake();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Arms the timerfd to expire at `deadline` (relative to now; a passed deadline fires at once).
fn arm(fd: &AsyncFd<OwnedFd>, deadline: Instant) {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_nanos(1));
    let spec = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        },
    };
    if let Err(error) =
        rustix::time::timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec)
    {
        tracing::error!("mock timer: cannot arm the timerfd: {error}");
    }
}

async fn run(shared: Arc<Shared>) {
    let mut due = Vec::new();
    loop {
        let mut guard = tokio::select! {
            guard = shared.fd.readable() => match guard {
                Ok(guard) => guard,
                Err(error) => {
                    tracing::error!("mock timer: cannot wait on the timerfd: {error}");
                    return;
                }
            },
            () = shared.stop.notified() => return,
        };
        // Consume the expiration count; the fd is non-blocking, so "would block" is harmless.
        let mut count = [0u8; 8];
        let _ = rustix::io::read(guard.get_inner(), &mut count);
        guard.clear_ready();
        {
            let mut heap = lock(&shared.heap);
            let now = Instant::now();
            while heap
                .entries
                .peek()
                .is_some_and(|Reverse(e)| e.deadline <= now)
            {
                let Reverse(entry) = heap.entries.pop().expect("peeked");
                due.push(entry.waker);
            }
            heap.armed = heap.entries.peek().map(|Reverse(e)| e.deadline);
            if let Some(next) = heap.armed {
                arm(&shared.fd, next);
            }
        }
        for waker in due.drain(..) {
            waker.wake();
        }
    }
}

/// Completes at its deadline; see [`Timer::sleep_until`].
#[derive(Debug)]
pub struct Sleep {
    timer: Timer,
    deadline: Instant,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        self.timer.wake_at(self.deadline, cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleeps_end_at_their_deadline_not_before() {
        let timer = Timer::start().unwrap();
        let start = Instant::now();
        let mut late = Vec::new();
        for i in 1..=50u64 {
            let deadline = start + Duration::from_micros(700 * i);
            timer.sleep_until(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline);
            late.push(now - deadline);
        }
        late.sort();
        // Loose bound for a shared CI machine; the precise figures come from the benchmark.
        assert!(
            late[25] < Duration::from_millis(5),
            "median lateness {:?}",
            late[25]
        );
        timer.stop();
    }
}
