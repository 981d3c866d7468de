//! A precise timer: one thread that wakes tasks at their deadlines.
//!
//! tokio's timer wheel rounds every sleep up to the next millisecond, which is more than the
//! inter-token gaps the mock must honour. This thread keeps a heap of deadlines and parks
//! until the earliest (the kernel's timer slack, 50 µs by default, bounds the lateness), then
//! spins for the last few microseconds. Deadlines are absolute, so lateness never accumulates.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

/// Below this distance to the next deadline the thread spins instead of parking.
const SPIN: Duration = Duration::from_micros(20);

#[derive(Debug, Clone)]
pub(crate) struct Timer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    thread: thread::Thread,
    stop: AtomicBool,
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
    /// Starts the timer thread; it ends when the last `Timer` clone is dropped.
    pub(crate) fn start(name: &str) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Arc<Shared>>();
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Ok(shared) = rx.recv() {
                    run(&shared);
                }
            })?;
        let shared = Arc::new(Shared {
            heap: Mutex::new(BinaryHeap::new()),
            thread: handle.thread().clone(),
            stop: AtomicBool::new(false),
        });
        // The thread runs until `stop`; the server calls it on shutdown and on drop.
        tx.send(shared.clone())
            .expect("the timer thread waits for its state");
        Ok(Self { shared })
    }

    /// Wakes `waker` at `deadline` (at once if it has passed).
    pub(crate) fn wake_at(&self, deadline: Instant, waker: Waker) {
        let mut heap = lock(&self.shared.heap);
        let earliest = heap.peek().map(|Reverse(e)| e.deadline);
        heap.push(Reverse(Entry { deadline, waker }));
        drop(heap);
        if earliest.is_none_or(|e| deadline < e) {
            self.shared.thread.unpark();
        }
    }

    /// A future that completes at `deadline`.
    pub(crate) fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            timer: self.clone(),
            deadline,
        }
    }

    /// Stops the thread; pending wakers are woken so no task hangs.
    pub(crate) fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.thread.unpark();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(shared: &Shared) {
    let mut due = Vec::new();
    loop {
        let stopping = shared.stop.load(Ordering::SeqCst);
        let now = Instant::now();
        let next = {
            let mut heap = lock(&shared.heap);
            while let Some(Reverse(entry)) = heap.peek() {
                if entry.deadline > now && !stopping {
                    break;
                }
                let Reverse(entry) = heap.pop().expect("peeked");
                due.push(entry.waker);
            }
            heap.peek().map(|Reverse(e)| e.deadline)
        };
        for waker in due.drain(..) {
            waker.wake();
        }
        if stopping {
            return;
        }
        match next {
            None => thread::park(),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left > SPIN {
                    thread::park_timeout(left - SPIN);
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

/// Completes at its deadline; see [`Timer::sleep_until`].
#[derive(Debug)]
pub(crate) struct Sleep {
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
        let timer = Timer::start("test-timer").unwrap();
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
