//! Waiting for each deadline of a schedule (an open-loop load's arrivals) precisely, without
//! keeping a core busy.
//!
//! A sleeping task wakes late by what this machine takes to wake a thread and run the task
//! (tens to hundreds of µs on a VM): the wake floor. The pacer measures that lateness on every
//! sleep, sleeps until the expected lateness before a deadline, and yields to the runtime only
//! for what remains of a wake that came early, at most the expected lateness and never more
//! than `max_spin`. A deadline nearer than the floor gets a plain sleep, as spinning through
//! the whole gap would buy precision with a busy core. A deadline that has passed, or comes
//! within [`DUE`], is met at once, so every arrival due at a wake goes out on that wake.

use std::time::{Duration, Instant};

use crate::Timer;

/// A deadline this close is met at once: a sleep that short would wake later than it waits.
pub const DUE: Duration = Duration::from_micros(10);

/// Weight of the newest lateness in the running estimate (an EWMA over about 8 wakes).
const WEIGHT: f64 = 1.0 / 8.0;

/// Paces deadlines in increasing order; see the module documentation.
#[derive(Debug)]
pub struct Pacer {
    timer: Timer,
    floor: WakeFloor,
}

impl Pacer {
    /// A pacer on `timer` that spins at most `max_spin` before a deadline.
    pub fn new(timer: Timer, max_spin: Duration) -> Self {
        Self {
            timer,
            floor: WakeFloor::new(max_spin),
        }
    }

    /// Completes at `deadline`, or at once when it has passed or is within [`DUE`]. Never
    /// completes earlier than [`DUE`] before it.
    pub async fn until(&mut self, deadline: Instant) {
        match plan(Instant::now(), deadline, self.floor.expected()) {
            Step::Due => {}
            Step::Sleep { until } => self.sleep(until).await,
            Step::SleepThenSpin { until } => {
                self.sleep(until).await;
                // What remains of an early wake: at most the expected lateness.
                while !is_due(Instant::now(), deadline) {
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// How late a wake is expected to come, as measured so far (at most `max_spin`).
    pub fn expected_lateness(&self) -> Duration {
        self.floor.expected()
    }

    async fn sleep(&mut self, until: Instant) {
        self.timer.sleep_until(until).await;
        self.floor
            .observe(Instant::now().saturating_duration_since(until));
    }
}

fn is_due(now: Instant, deadline: Instant) -> bool {
    deadline <= now + DUE
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Due,
    /// Sleep until the deadline: it is too near for an early wake to be worth a spin.
    Sleep {
        until: Instant,
    },
    /// Sleep until the expected lateness before the deadline, then spin to it.
    SleepThenSpin {
        until: Instant,
    },
}

fn plan(now: Instant, deadline: Instant, expected: Duration) -> Step {
    if is_due(now, deadline) {
        return Step::Due;
    }
    match deadline.checked_sub(expected) {
        Some(early) if early > now => Step::SleepThenSpin { until: early },
        _ => Step::Sleep { until: deadline },
    }
}

/// The expected lateness of a wake: a running average of measured lateness, each measure
/// capped at `max` so that one stall (a stolen vCPU) cannot make the pacer spin long.
#[derive(Debug)]
struct WakeFloor {
    max: Duration,
    average_s: Option<f64>,
}

impl WakeFloor {
    fn new(max: Duration) -> Self {
        Self {
            max,
            average_s: None,
        }
    }

    fn observe(&mut self, lateness: Duration) {
        let late = lateness.min(self.max).as_secs_f64();
        self.average_s = Some(match self.average_s {
            None => late,
            Some(average) => average + WEIGHT * (late - average),
        });
    }

    fn expected(&self) -> Duration {
        // Never above `max`, so the spin after an early wake never is either.
        self.average_s
            .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s).min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn passed_and_nearly_due_deadlines_are_met_at_once() {
        let now = Instant::now();
        for deadline in [now - 5 * US, now, now + DUE] {
            assert_eq!(plan(now, deadline, 80 * US), Step::Due);
        }
        assert_ne!(plan(now, now + DUE + US, 80 * US), Step::Due);
    }

    #[test]
    fn it_wakes_early_by_the_expected_lateness_and_spins_only_the_rest() {
        let now = Instant::now();
        assert_eq!(
            plan(now, now + 1000 * US, 80 * US),
            Step::SleepThenSpin {
                until: now + 920 * US
            }
        );
        // Nothing measured yet: a plain sleep to the deadline, and nothing left to spin.
        assert_eq!(
            plan(now, now + 1000 * US, Duration::ZERO),
            Step::SleepThenSpin {
                until: now + 1000 * US
            }
        );
    }

    #[test]
    fn a_deadline_nearer_than_the_wake_floor_is_slept_to_not_spun_to() {
        let now = Instant::now();
        for gap in [20 * US, 79 * US, 80 * US] {
            assert_eq!(
                plan(now, now + gap, 80 * US),
                Step::Sleep { until: now + gap },
                "{gap:?}"
            );
        }
    }

    #[test]
    fn the_floor_follows_lateness_and_one_stall_cannot_raise_it_past_the_cap() {
        let mut floor = WakeFloor::new(100 * US);
        assert_eq!(floor.expected(), Duration::ZERO);
        floor.observe(60 * US);
        assert_eq!(floor.expected(), 60 * US);
        for _ in 0..100 {
            floor.observe(40 * US);
        }
        let settled = floor.expected();
        assert!(settled.abs_diff(40 * US) < US, "{settled:?}");
        floor.observe(Duration::from_millis(30));
        let after_stall = floor.expected();
        assert!(after_stall < 50 * US, "{after_stall:?}");
        for _ in 0..100 {
            floor.observe(Duration::from_secs(1));
        }
        assert_eq!(floor.expected(), 100 * US, "never above the cap");
    }

    #[test]
    fn a_due_deadline_completes_on_the_first_poll() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let mut pacer = Pacer::new(Timer::start().unwrap(), 100 * US);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for deadline in [Instant::now() - US, Instant::now() + DUE / 2] {
            let until = std::pin::pin!(pacer.until(deadline));
            assert!(until.poll(&mut cx).is_ready());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deadlines_are_met_never_early_and_the_floor_stays_under_the_cap() {
        let timer = Timer::start().unwrap();
        let mut pacer = Pacer::new(timer.clone(), 100 * US);
        let mut deadline = Instant::now();
        let mut late = Vec::new();
        for i in 0..200 {
            // Gaps of 300 µs and of 30 µs: above and below any wake floor.
            deadline += if i % 2 == 0 { 300 * US } else { 30 * US };
            pacer.until(deadline).await;
            let now = Instant::now();
            assert!(now + DUE >= deadline, "met early at {i}");
            late.push(now.saturating_duration_since(deadline));
            assert!(pacer.expected_lateness() <= 100 * US);
        }
        late.sort();
        // Loose bound for a shared CI machine; the precise figures come from the benchmark.
        assert!(
            late[100] < Duration::from_millis(5),
            "median lateness {:?}",
            late[100]
        );
        timer.stop();
    }
}
