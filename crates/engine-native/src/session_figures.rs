//! A benchmark's multi-turn figures, online and bounded: the window's successful turns by
//! turn index (the indexes past [`TURN_BUCKETS`] folded into the last), and per-session totals.

use bench_core::schema::{Sessions, TurnMetrics};
use bench_core::stats::Histogram;

/// Turn indexes reported one by one; later turns share the last entry, so a report stays
/// small whatever `data.turns` or a file's conversations ask.
pub(crate) const TURN_BUCKETS: u32 = 32;

/// One finished turn's figures.
pub(crate) struct Turn {
    pub(crate) index: u32,
    pub(crate) ttft_ms: Option<f64>,
    pub(crate) latency_ms: f64,
    pub(crate) prompt_tokens: u64,
    pub(crate) cached_prompt_tokens: Option<u64>,
    pub(crate) output_tokens: u64,
}

/// How a session ended.
pub(crate) struct SessionEnd {
    pub(crate) turns_sent: u32,
    /// Every turn of its script answered successfully.
    pub(crate) completed: bool,
    pub(crate) duration_s: f64,
    pub(crate) output_tokens: u64,
}

#[derive(Debug)]
struct Bucket {
    requests: u64,
    ttft: Histogram,
    latency: Histogram,
    prompt: Histogram,
    cached: Histogram,
    output: Histogram,
}

impl Bucket {
    fn new() -> Self {
        Self {
            requests: 0,
            ttft: Histogram::for_milliseconds(),
            latency: Histogram::for_milliseconds(),
            prompt: Histogram::for_counts(),
            cached: Histogram::for_counts(),
            output: Histogram::for_counts(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct SessionFigures {
    by_turn: Vec<Bucket>,
    started: u64,
    completed: u64,
    turns: Histogram,
    duration: Histogram,
    output: Histogram,
}

impl SessionFigures {
    pub(crate) fn new() -> Self {
        Self {
            by_turn: Vec::new(),
            started: 0,
            completed: 0,
            turns: Histogram::for_counts(),
            duration: Histogram::new(0.001),
            output: Histogram::for_counts(),
        }
    }

    /// A successful turn of the measured window.
    pub(crate) fn turn(&mut self, turn: &Turn) {
        let slot = (turn.index.clamp(1, TURN_BUCKETS) - 1) as usize;
        while self.by_turn.len() <= slot {
            self.by_turn.push(Bucket::new());
        }
        let bucket = &mut self.by_turn[slot];
        bucket.requests += 1;
        if let Some(ttft) = turn.ttft_ms {
            let _ = bucket.ttft.record(ttft);
        }
        let _ = bucket.latency.record(turn.latency_ms);
        let _ = bucket.prompt.record(turn.prompt_tokens as f64);
        if let Some(cached) = turn.cached_prompt_tokens {
            let _ = bucket.cached.record(cached as f64);
        }
        let _ = bucket.output.record(turn.output_tokens as f64);
    }

    /// A session that sent at least one turn ended.
    pub(crate) fn session(&mut self, end: &SessionEnd) {
        self.started += 1;
        let _ = self.turns.record(f64::from(end.turns_sent));
        if end.completed {
            self.completed += 1;
            let _ = self.duration.record(end.duration_s);
            let _ = self.output.record(end.output_tokens as f64);
        }
    }

    pub(crate) fn finish(self) -> Sessions {
        let buckets = self.by_turn.len();
        Sessions {
            started: self.started,
            completed: self.completed,
            partial: self.started - self.completed,
            turns_per_session: self.turns.summary(),
            duration_s: self.duration.summary(),
            output_tokens: self.output.summary(),
            by_turn: self
                .by_turn
                .into_iter()
                .enumerate()
                .map(|(i, b)| TurnMetrics {
                    turn: i as u32 + 1,
                    and_later: buckets == TURN_BUCKETS as usize && i + 1 == buckets,
                    requests: b.requests,
                    ttft_ms: b.ttft.summary(),
                    request_latency_ms: b.latency.summary(),
                    prompt_tokens: b.prompt.summary(),
                    cached_prompt_tokens: b.cached.summary(),
                    output_tokens: b.output.summary(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(index: u32, ttft_ms: f64) -> Turn {
        Turn {
            index,
            ttft_ms: Some(ttft_ms),
            latency_ms: ttft_ms + 10.0,
            prompt_tokens: u64::from(index) * 100,
            cached_prompt_tokens: (index > 1).then_some(u64::from(index - 1) * 100),
            output_tokens: 5,
        }
    }

    #[test]
    fn turns_are_kept_by_index_and_the_ones_past_the_cap_share_the_last() {
        let mut f = SessionFigures::new();
        for index in [1, 2, 2, 3, TURN_BUCKETS, TURN_BUCKETS + 5, 500] {
            f.turn(&turn(index, f64::from(index)));
        }
        f.session(&SessionEnd {
            turns_sent: 3,
            completed: true,
            duration_s: 2.5,
            output_tokens: 15,
        });
        f.session(&SessionEnd {
            turns_sent: 1,
            completed: false,
            duration_s: 0.1,
            output_tokens: 5,
        });
        let s = f.finish();
        assert_eq!((s.started, s.completed, s.partial), (2, 1, 1));
        assert_eq!(s.by_turn.len(), TURN_BUCKETS as usize);
        assert_eq!(s.by_turn[1].requests, 2);
        assert_eq!(s.by_turn[3].requests, 0, "a turn index nobody reached");
        let last = s.by_turn.last().unwrap();
        assert!(last.and_later && !s.by_turn[0].and_later);
        assert_eq!(last.requests, 3);
        assert!(s.by_turn[0].cached_prompt_tokens.is_none());
        assert_eq!(
            s.by_turn[1].cached_prompt_tokens.as_ref().unwrap().mean,
            100.0
        );
        let duration = s.duration_s.unwrap();
        assert_eq!((duration.count, duration.mean), (1, 2.5), "completed only");
        assert_eq!(s.turns_per_session.unwrap().count, 2);
    }

    #[test]
    fn fewer_turns_than_the_cap_are_not_folded() {
        let mut f = SessionFigures::new();
        f.turn(&turn(1, 1.0));
        f.turn(&turn(2, 1.0));
        let s = f.finish();
        assert_eq!(s.by_turn.len(), 2);
        assert!(s.by_turn.iter().all(|t| !t.and_later));
        assert_eq!(s.started, 0);
    }
}
