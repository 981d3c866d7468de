//! The mock's `GET /metrics`: what it is doing and has done, in vLLM's Prometheus names, so a
//! client that scrapes a real server's metrics (or waits for its in-flight gauges to fall) can
//! be tested against a server whose every figure is known: the requests running and waiting,
//! prompt and generated token counters, and request-time histograms.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::truth::RequestRecord;

/// Bucket upper bounds (seconds) of every time histogram: fine below 100 ms, where a fast
/// server's TTFT and per-token times fall, and wide enough for a saturated queue.
const BUCKETS_S: [f64; 26] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5,
    2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0,
];

/// A cumulative histogram of seconds with [`BUCKETS_S`], as Prometheus exposes one.
#[derive(Debug, Default)]
struct TimeHistogram {
    /// Observations per bucket (not cumulative), the last one for `+Inf`.
    buckets: [AtomicU64; BUCKETS_S.len() + 1],
    sum_ns: AtomicU64,
}

impl TimeHistogram {
    fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let bucket = BUCKETS_S
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS_S.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add((seconds * 1e9).round() as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS_S
                .get(i)
                .map_or("+Inf".to_owned(), |le| le.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// The counters and histograms of `/metrics`; the gauges are read from the batch when served.
#[derive(Debug, Default)]
pub(crate) struct Served {
    /// Prompt tokens of the requests admitted into the batch.
    prompt_tokens: AtomicU64,
    /// Requests whose response was sent to its end.
    succeeded: AtomicU64,
    /// Arrival to the first content token written.
    ttft: TimeHistogram,
    /// Arrival to the last token written, of the requests sent to their end.
    e2e: TimeHistogram,
    /// Arrival to admission into the batch.
    queue: TimeHistogram,
    /// (last token − first token) / (tokens − 1), of requests with two tokens or more.
    per_token: TimeHistogram,
}

/// The instantaneous figures `/metrics` shows beside the counters.
pub(crate) struct Now {
    pub(crate) running: u64,
    pub(crate) waiting: u64,
    pub(crate) max_batch: u32,
    /// Content tokens written so far (the ground truth's count).
    pub(crate) generated_tokens: u64,
}

impl Served {
    /// A request was admitted into the batch with `prompt_tokens`.
    pub(crate) fn admitted(&self, prompt_tokens: u32) {
        self.prompt_tokens
            .fetch_add(u64::from(prompt_tokens), Ordering::Relaxed);
    }

    /// A request ended: its times go into the histograms.
    pub(crate) fn ended(&self, record: &RequestRecord) {
        let seconds = |from: i64, to: i64| (to - from) as f64 / 1e6;
        let arrival = record.arrival_unix_us;
        if let Some(admitted) = record.admitted_unix_us {
            self.queue.observe(seconds(arrival, admitted));
        }
        if let Some(first) = record.first_token_unix_us {
            self.ttft.observe(seconds(arrival, first));
        }
        if let (true, Some(last)) = (record.completed, record.last_token_unix_us) {
            self.succeeded.fetch_add(1, Ordering::Relaxed);
            self.e2e.observe(seconds(arrival, last));
        }
        if let (Some(first), Some(last), true) = (
            record.first_token_unix_us,
            record.last_token_unix_us,
            record.tokens_sent >= 2,
        ) {
            self.per_token
                .observe(seconds(first, last) / f64::from(record.tokens_sent - 1));
        }
    }

    /// The Prometheus text of `/metrics`, labelled with the served `model`.
    pub(crate) fn text(&self, model: &str, now: &Now) -> String {
        let model: String = model
            .chars()
            .filter(|c| !matches!(c, '"' | '\\' | '\n'))
            .collect();
        let labels = format!("model_name=\"{model}\"");
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{labels}}} {value}"
            );
        };
        metric(
            "vllm:num_requests_running",
            "gauge",
            "Requests in the batch (admitted, not finished).",
            now.running.to_string(),
        );
        metric(
            "vllm:num_requests_waiting",
            "gauge",
            "Requests waiting for admission into the batch.",
            now.waiting.to_string(),
        );
        metric(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "The mock has no KV cache: the share of batch slots in use stands for it (0 to 1).",
            (now.running as f64 / f64::from(now.max_batch.max(1))).to_string(),
        );
        metric(
            "vllm:prompt_tokens_total",
            "counter",
            "Prompt tokens of the requests admitted into the batch.",
            self.prompt_tokens.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "vllm:generation_tokens_total",
            "counter",
            "Content tokens written to clients.",
            now.generated_tokens.to_string(),
        );
        metric(
            "vllm:request_success_total",
            "counter",
            "Requests whose response was sent to its end.",
            self.succeeded.load(Ordering::Relaxed).to_string(),
        );
        self.ttft.write(
            &mut out,
            "vllm:time_to_first_token_seconds",
            "Arrival to the first content token written.",
            &labels,
        );
        self.per_token.write(
            &mut out,
            "vllm:time_per_output_token_seconds",
            "Per request, the mean gap between its content tokens.",
            &labels,
        );
        self.e2e.write(
            &mut out,
            "vllm:e2e_request_latency_seconds",
            "Arrival to the last token written, of requests sent to their end.",
            &labels,
        );
        self.queue.write(
            &mut out,
            "vllm:request_queue_time_seconds",
            "Arrival to admission into the batch.",
            &labels,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let h = TimeHistogram::default();
        for s in [0.0005, 0.015, 0.015, 1000.0] {
            h.observe(s);
        }
        let mut out = String::new();
        h.write(&mut out, "x_seconds", "help", "model_name=\"m\"");
        assert!(out.contains("x_seconds_bucket{model_name=\"m\",le=\"0.001\"} 1\n"));
        assert!(out.contains("x_seconds_bucket{model_name=\"m\",le=\"0.01\"} 1\n"));
        assert!(out.contains("x_seconds_bucket{model_name=\"m\",le=\"0.02\"} 3\n"));
        assert!(out.contains("x_seconds_bucket{model_name=\"m\",le=\"640\"} 3\n"));
        assert!(out.contains("x_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 4\n"));
        assert!(out.contains("x_seconds_count{model_name=\"m\"} 4\n"));
        assert!(
            out.contains("x_seconds_sum{model_name=\"m\"} 1000.0305\n"),
            "{out}"
        );
    }
}
