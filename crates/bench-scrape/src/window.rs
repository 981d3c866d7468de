//! A benchmark's scrapes folded as they come, in bounded memory: gauge summaries, counter
//! increases (across a counter reset), the first and last histogram buckets, time series
//! thinned to at most [`MAX_POINTS`] points, and the summary the report holds.

use std::collections::{BTreeMap, HashMap};

use bench_core::schema::{
    GaugeSummary, ScrapeStatus, ServerHistogram, ServerMetrics, ServerSeries, Timestamp,
    TokenCheck, UnmappedMetric,
};

use crate::names::{naming, Counter, Gauge, Hist, COUNTERS, GAUGES, HISTOGRAMS};
use crate::text::Page;

/// Most points a series keeps; a longer benchmark keeps every second, fourth, ... scrape.
pub(crate) const MAX_POINTS: usize = 1024;
/// Most unmapped series kept (`keep_unmapped`); a page with more keeps the first ones seen.
const MAX_UNMAPPED: usize = 1000;

/// A histogram on one page: cumulative counts by upper bound (summed over label sets), its
/// `_sum` and `_count`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    bounds: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// The common set on one page.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    gauges: [Option<f64>; GAUGES.len()],
    counters: [Option<f64>; COUNTERS.len()],
    histograms: [Option<Buckets>; HISTOGRAMS.len()],
    naming: Option<&'static str>,
    /// With `keep_unmapped`: every other sample name, its family's type and its value.
    unmapped: Vec<(String, String, f64)>,
}

/// Reads the common set from a page: each name summed over its label sets, the first
/// alternative present of each entry.
pub(crate) fn read(page: &Page<'_>, keep_unmapped: bool) -> Reading {
    let mut sums: HashMap<&str, f64> = HashMap::new();
    let mut buckets: HashMap<&str, Vec<(f64, f64)>> = HashMap::new();
    for s in &page.samples {
        match (s.le, s.name.strip_suffix("_bucket")) {
            (Some(le), Some(base)) => buckets.entry(base).or_default().push((le, s.value)),
            _ => *sums.entry(s.name).or_default() += s.value,
        }
    }
    let mut reading = Reading::default();
    let first_present =
        |alternatives: &'static [&'static [&'static str]]| -> Option<(f64, &'static str)> {
            alternatives.iter().find_map(|names| {
                let values: Vec<f64> = names.iter().filter_map(|n| sums.get(n).copied()).collect();
                (values.len() == names.len()).then(|| (values.iter().sum(), names[0]))
            })
        };
    let mut found = None;
    for (i, (_, _, alternatives)) in GAUGES.iter().enumerate() {
        if let Some((value, name)) = first_present(alternatives) {
            reading.gauges[i] = Some(value);
            found = found.or(naming(name));
        }
    }
    for (i, (_, _, alternatives)) in COUNTERS.iter().enumerate() {
        if let Some((value, name)) = first_present(alternatives) {
            reading.counters[i] = Some(value);
            found = found.or(naming(name));
        }
    }
    for (i, (_, bases)) in HISTOGRAMS.iter().enumerate() {
        let Some((base, bounds)) = bases
            .iter()
            .find_map(|b| buckets.get(b).map(|bounds| (*b, bounds)))
        else {
            continue;
        };
        let mut merged: Vec<(f64, f64)> = Vec::new();
        let mut sorted = bounds.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (le, count) in sorted {
            match merged.last_mut() {
                Some(last) if last.0 == le => last.1 += count,
                _ => merged.push((le, count)),
            }
        }
        let part = |suffix: &str| sums.get(format!("{base}{suffix}").as_str()).copied();
        reading.histograms[i] = Some(Buckets {
            count: part("_count").unwrap_or_else(|| merged.last().map_or(0.0, |b| b.1)),
            sum: part("_sum").unwrap_or(0.0),
            bounds: merged,
        });
        found = found.or(naming(base));
    }
    reading.naming = found;
    if keep_unmapped {
        let mut names: Vec<(&str, f64)> = sums
            .iter()
            .filter(|(name, _)| !crate::names::is_mapped(name))
            .map(|(n, v)| (*n, *v))
            .collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        reading.unmapped = names
            .into_iter()
            .map(|(name, value)| (name.to_owned(), family_type(page, name), value))
            .collect();
    }
    reading
}

/// The type a sample's family declared: `x_total` and `x_sum` belong to the family `x`.
fn family_type(page: &Page<'_>, name: &str) -> String {
    let family = [name]
        .into_iter()
        .chain(
            ["_total", "_sum", "_count", "_created"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix)),
        )
        .find_map(|family| page.types.get(family));
    // A histogram's or summary's `_sum` and `_count` only grow: counters.
    match family {
        Some(&"histogram") | Some(&"summary")
            if name.ends_with("_sum") || name.ends_with("_count") =>
        {
            "counter".to_owned()
        }
        Some(kind) => (*kind).to_owned(),
        None => "untyped".to_owned(),
    }
}

/// A gauge's values so far.
#[derive(Debug, Clone, Copy)]
struct Values {
    min: f64,
    max: f64,
    sum: f64,
    n: u64,
    last: f64,
}

impl Values {
    fn new(value: f64) -> Self {
        Self {
            min: value,
            max: value,
            sum: value,
            n: 1,
            last: value,
        }
    }

    fn add(&mut self, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.n += 1;
        self.last = value;
    }

    fn summary(&self) -> GaugeSummary {
        GaugeSummary {
            min: self.min,
            mean: self.sum / self.n as f64,
            max: self.max,
            last: self.last,
        }
    }
}

/// A counter's increase since it was first seen, across resets (a value below the previous
/// one means the server restarted it from 0, as Prometheus's `increase` assumes).
#[derive(Debug, Clone, Copy)]
struct Increase {
    previous: f64,
    total: f64,
}

impl Increase {
    fn add(&mut self, value: f64) {
        self.total += if value >= self.previous {
            value - self.previous
        } else {
            value
        };
        self.previous = value;
    }
}

/// One time series, thinned to at most [`MAX_POINTS`] points.
#[derive(Debug)]
struct Series {
    name: &'static str,
    points: Vec<[f64; 2]>,
    /// Every how many-th scrape is kept.
    stride: u64,
    seen: u64,
}

impl Series {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            points: Vec::new(),
            stride: 1,
            seen: 0,
        }
    }

    fn push(&mut self, t: f64, value: f64) {
        if self.seen.is_multiple_of(self.stride) {
            self.points.push([t, value]);
            if self.points.len() > MAX_POINTS {
                let kept: Vec<[f64; 2]> = self.points.iter().copied().step_by(2).collect();
                self.points = kept;
                self.stride *= 2;
            }
        }
        self.seen += 1;
    }
}

/// An unmapped series (`keep_unmapped`).
#[derive(Debug)]
struct Unmapped {
    kind: String,
    values: Values,
    increase: Increase,
}

/// The client's own counts, for the token check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTokens {
    /// Output tokens of every request the benchmark finished.
    pub output: u64,
    /// Prompt tokens of every request the benchmark finished.
    pub prompt: u64,
}

/// What a benchmark's scrapes have shown so far.
#[derive(Debug)]
pub(crate) struct Window {
    keep_unmapped: bool,
    scrapes: u64,
    failed: u64,
    last_error: Option<String>,
    first_t: Option<f64>,
    last_t: f64,
    naming: Option<&'static str>,
    gauges: [Option<Values>; GAUGES.len()],
    counters: [Option<Increase>; COUNTERS.len()],
    first_histograms: [Option<Buckets>; HISTOGRAMS.len()],
    last_histograms: [Option<Buckets>; HISTOGRAMS.len()],
    series: Vec<(SeriesOf, Series)>,
    unmapped: BTreeMap<String, Unmapped>,
}

/// Which value a series plots.
#[derive(Debug, Clone, Copy)]
enum SeriesOf {
    Gauge(usize),
    Counter(usize),
}

/// The series every report carries, when the server has them.
const SERIES: [(SeriesOf, &str); 5] = [
    (SeriesOf::Gauge(0), "running"),
    (SeriesOf::Gauge(1), "waiting"),
    (SeriesOf::Gauge(2), "kv_cache_usage"),
    (SeriesOf::Counter(0), "prompt_tokens"),
    (SeriesOf::Counter(1), "generation_tokens"),
];

impl Window {
    pub(crate) fn new(keep_unmapped: bool) -> Self {
        Self {
            keep_unmapped,
            scrapes: 0,
            failed: 0,
            last_error: None,
            first_t: None,
            last_t: 0.0,
            naming: None,
            gauges: [None; GAUGES.len()],
            counters: [None; COUNTERS.len()],
            first_histograms: Default::default(),
            last_histograms: Default::default(),
            series: SERIES
                .iter()
                .map(|(of, name)| (*of, Series::new(name)))
                .collect(),
            unmapped: BTreeMap::new(),
        }
    }

    pub(crate) fn keep_unmapped(&self) -> bool {
        self.keep_unmapped
    }

    pub(crate) fn scrapes(&self) -> u64 {
        self.scrapes
    }

    /// A scrape at `t` seconds into the benchmark that could not be read.
    pub(crate) fn failed(&mut self, error: String) {
        self.failed += 1;
        self.last_error = Some(error);
    }

    /// A page read at `t` seconds into the benchmark.
    pub(crate) fn add(&mut self, t: f64, reading: Reading) {
        self.scrapes += 1;
        self.first_t.get_or_insert(t);
        self.last_t = t;
        self.naming = self.naming.or(reading.naming);
        for (slot, value) in self.gauges.iter_mut().zip(reading.gauges) {
            if let Some(v) = value {
                match slot {
                    Some(values) => values.add(v),
                    None => *slot = Some(Values::new(v)),
                }
            }
        }
        for (slot, value) in self.counters.iter_mut().zip(reading.counters) {
            if let Some(v) = value {
                match slot {
                    Some(increase) => increase.add(v),
                    None => {
                        *slot = Some(Increase {
                            previous: v,
                            total: 0.0,
                        })
                    }
                }
            }
        }
        for (i, h) in reading.histograms.into_iter().enumerate() {
            if h.is_some() && self.first_histograms[i].is_none() {
                self.first_histograms[i] = h.clone();
            }
            if h.is_some() {
                self.last_histograms[i] = h;
            }
        }
        for (of, series) in &mut self.series {
            let value = match *of {
                SeriesOf::Gauge(i) => reading.gauges[i],
                SeriesOf::Counter(i) => self.counters[i].map(|c| c.total),
            };
            if let Some(v) = value {
                series.push(t, v);
            }
        }
        for (name, kind, value) in reading.unmapped {
            if let Some(u) = self.unmapped.get_mut(&name) {
                u.values.add(value);
                u.increase.add(value);
            } else if self.unmapped.len() < MAX_UNMAPPED {
                self.unmapped.insert(
                    name,
                    Unmapped {
                        kind,
                        values: Values::new(value),
                        increase: Increase {
                            previous: value,
                            total: 0.0,
                        },
                    },
                );
            }
        }
    }

    /// The report's block.
    pub(crate) fn finish(
        self,
        started_at: Timestamp,
        url: String,
        interval_s: f64,
        absent: bool,
        client: Option<ClientTokens>,
        tolerance: f64,
    ) -> ServerMetrics {
        let status = match self.scrapes {
            0 if absent => ScrapeStatus::Absent,
            0 => ScrapeStatus::Failed,
            1 => ScrapeStatus::Partial,
            _ => ScrapeStatus::Scraped,
        };
        let gauge = |g: Gauge| {
            let i = GAUGES.iter().position(|(x, _, _)| *x == g)?;
            self.gauges[i].map(|v| v.summary())
        };
        let counter = |c: Counter| {
            let i = COUNTERS.iter().position(|(x, _, _)| *x == c)?;
            self.counters[i].map(|v| v.total)
        };
        let histogram = |h: Hist| {
            let i = HISTOGRAMS.iter().position(|(x, _)| *x == h)?;
            increase_quantiles(
                self.first_histograms[i].as_ref()?,
                self.last_histograms[i].as_ref()?,
            )
        };
        let prefix_cache_hit_rate = match (
            counter(Counter::PrefixHits),
            counter(Counter::PrefixQueries),
        ) {
            (Some(hits), Some(queries)) if queries > 0.0 => Some(hits / queries),
            _ => gauge(Gauge::PrefixHitRate).map(|g| g.mean),
        };
        let generation_tokens = counter(Counter::GenerationTokens);
        let prompt_tokens = counter(Counter::PromptTokens);
        // Output tokens are judged; prompt tokens are shown only: a server counts the prompt of
        // a request it admitted even when the client left before its first token.
        let token_check = client.map(|client| {
            let relative_difference = generation_tokens.map(|s| match client.output {
                0 if s == 0.0 => 0.0,
                0 => 1.0,
                c => (s - c as f64).abs() / c as f64,
            });
            TokenCheck {
                client_output_tokens: client.output,
                server_generation_tokens: generation_tokens,
                client_prompt_tokens: client.prompt,
                server_prompt_tokens: prompt_tokens,
                relative_difference,
                agrees: relative_difference.map(|d| d <= tolerance),
            }
        });
        ServerMetrics {
            url,
            status,
            naming: self.naming.map(str::to_owned),
            interval_s,
            scrapes: self.scrapes,
            failed_scrapes: self.failed,
            last_error: self.last_error.clone(),
            started_at,
            window_s: self.first_t.map_or(0.0, |first| self.last_t - first),
            running: gauge(Gauge::Running),
            waiting: gauge(Gauge::Waiting),
            kv_cache_usage: gauge(Gauge::KvCacheUsage),
            prompt_tokens,
            generation_tokens,
            preemptions: counter(Counter::Preemptions),
            prefix_cache_hit_rate,
            ttft_ms: histogram(Hist::Ttft),
            itl_ms: histogram(Hist::Itl),
            e2e_latency_ms: histogram(Hist::E2e),
            queue_time_ms: histogram(Hist::Queue),
            series: self
                .series
                .iter()
                .filter(|(_, s)| !s.points.is_empty())
                .map(|(_, s)| ServerSeries {
                    name: s.name.to_owned(),
                    points: s.points.clone(),
                })
                .collect(),
            unmapped: self
                .unmapped
                .iter()
                .map(|(name, u)| {
                    let counter = u.kind == "counter";
                    UnmappedMetric {
                        name: name.clone(),
                        kind: u.kind.clone(),
                        increase: counter.then_some(u.increase.total),
                        values: (!counter).then(|| u.values.summary()),
                    }
                })
                .collect(),
            token_check,
            cpu_ms_per_scrape: None,
        }
    }
}

/// The quantiles of what a histogram gained between two pages, in ms; `None` when it gained
/// nothing.
fn increase_quantiles(first: &Buckets, last: &Buckets) -> Option<ServerHistogram> {
    // A server restarted in between: its counts began again from 0.
    let reset = last.count < first.count;
    let before = |le: f64| {
        if reset {
            0.0
        } else {
            first.bounds.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1)
        }
    };
    let bounds: Vec<(f64, f64)> = last
        .bounds
        .iter()
        .map(|&(le, cumulative)| (le, (cumulative - before(le)).max(0.0)))
        .collect();
    let count = if reset {
        last.count
    } else {
        last.count - first.count
    };
    if count <= 0.0 {
        return None;
    }
    let sum = if reset {
        last.sum
    } else {
        last.sum - first.sum
    };
    let q = |q: f64| quantile(q, &bounds).map(|s| s * 1000.0);
    Some(ServerHistogram {
        count,
        mean: sum / count * 1000.0,
        p50: q(0.5)?,
        p90: q(0.9)?,
        p99: q(0.99)?,
    })
}

/// Prometheus's `histogram_quantile` over cumulative `(le, count)` buckets sorted by `le`:
/// linear inside the bucket the rank falls in (from 0 for the first bucket); a rank in the
/// `+Inf` bucket gives the highest finite bound.
fn quantile(q: f64, bounds: &[(f64, f64)]) -> Option<f64> {
    let total = bounds.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(le, cumulative) in bounds {
        if cumulative >= rank {
            if le.is_infinite() {
                return Some(previous.0);
            }
            let (start, below) = previous;
            let inside = cumulative - below;
            if inside <= 0.0 {
                return Some(le);
            }
            return Some(start + (le - start) * (rank - below) / inside);
        }
        previous = (le, cumulative);
    }
    Some(previous.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse;

    fn page(running: f64, prompt: f64, generated: f64, buckets: [f64; 3]) -> String {
        format!(
            "# TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{{model_name=\"m\",engine=\"0\"}} {running}\n\
             vllm:num_requests_running{{model_name=\"m\",engine=\"1\"}} 1\n\
             vllm:prompt_tokens_total{{model_name=\"m\"}} {prompt}\n\
             vllm:generation_tokens_total{{model_name=\"m\"}} {generated}\n\
             vllm:time_to_first_token_seconds_bucket{{le=\"0.01\"}} {}\n\
             vllm:time_to_first_token_seconds_bucket{{le=\"0.1\"}} {}\n\
             vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {}\n\
             vllm:time_to_first_token_seconds_sum 1.0\n\
             vllm:time_to_first_token_seconds_count {}\n\
             process_cpu_seconds_total 3\n\
             # TYPE process_cpu_seconds counter\n",
            buckets[0], buckets[1], buckets[2], buckets[2]
        )
    }

    fn scraped(pages: &[String]) -> ServerMetrics {
        let mut window = Window::new(true);
        for (i, text) in pages.iter().enumerate() {
            window.add(i as f64, read(&parse(text), true));
        }
        window.finish(
            Timestamp::from_unix_micros(0),
            "http://x/metrics".to_owned(),
            1.0,
            false,
            Some(ClientTokens {
                output: 200,
                prompt: 1000,
            }),
            0.05,
        )
    }

    #[test]
    fn gauges_counters_and_histograms_over_the_window() {
        let m = scraped(&[
            page(0.0, 500.0, 100.0, [0.0, 0.0, 0.0]),
            page(6.0, 900.0, 200.0, [10.0, 90.0, 100.0]),
            page(2.0, 1500.0, 300.0, [10.0, 90.0, 100.0]),
        ]);
        assert_eq!(m.status, ScrapeStatus::Scraped);
        assert_eq!(m.naming.as_deref(), Some("vllm"));
        // Summed over the two engines' label sets.
        let running = m.running.unwrap();
        assert_eq!((running.min, running.max, running.last), (1.0, 7.0, 3.0));
        assert!((running.mean - 11.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (m.prompt_tokens, m.generation_tokens),
            (Some(1000.0), Some(200.0))
        );
        let ttft = m.ttft_ms.unwrap();
        assert_eq!(ttft.count, 100.0);
        // 50th of 100 observations: 40 of the 80 between 10 and 100 ms.
        assert!((ttft.p50 - 55.0).abs() < 1e-9, "{ttft:?}");
        // 99th: in the +Inf bucket, so the highest finite bound.
        assert_eq!(ttft.p99, 100.0);
        let check = m.token_check.unwrap();
        assert_eq!(
            (check.agrees, check.relative_difference),
            (Some(true), Some(0.0))
        );
        let series: Vec<&str> = m.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(series, ["running", "prompt_tokens", "generation_tokens"]);
        assert_eq!(
            m.series[1].points,
            vec![[0.0, 0.0], [1.0, 400.0], [2.0, 1000.0]]
        );
        assert_eq!(m.unmapped[0].name, "process_cpu_seconds_total");
        assert_eq!(m.unmapped[0].increase, Some(0.0));
    }

    #[test]
    fn a_counter_reset_counts_what_came_after_it() {
        let m = scraped(&[
            page(0.0, 500.0, 100.0, [0.0, 0.0, 0.0]),
            page(0.0, 40.0, 250.0, [0.0, 0.0, 0.0]),
        ]);
        assert_eq!(m.prompt_tokens, Some(40.0));
        assert_eq!(m.generation_tokens, Some(150.0));
        let check = m.token_check.unwrap();
        assert_eq!(check.agrees, Some(false));
        // 150 generated against the client's 200 output tokens.
        assert!((check.relative_difference.unwrap() - 0.25).abs() < 1e-9);
    }

    #[test]
    fn llama_cpp_prompt_tokens_add_the_cached_ones() {
        let text = "llamacpp:prompt_tokens_total 100\nllamacpp:prompt_tokens_cached_total 28\n\
                    llamacpp:tokens_predicted_total 64\nllamacpp:requests_processing 1\n";
        let reading = read(&parse(text), false);
        assert_eq!(reading.naming, Some("llamacpp"));
        assert_eq!(reading.counters[0], Some(128.0));
        assert_eq!(reading.counters[1], Some(64.0));
        assert_eq!(reading.counters[4], Some(28.0));
    }

    #[test]
    fn long_series_are_thinned_to_the_cap() {
        let mut series = Series::new("running");
        for i in 0..10_000 {
            series.push(f64::from(i), 1.0);
        }
        assert!(series.points.len() <= MAX_POINTS && series.points.len() > MAX_POINTS / 2);
        assert_eq!(series.points[0], [0.0, 1.0]);
        let gaps: Vec<f64> = series
            .points
            .windows(2)
            .map(|w| w[1][0] - w[0][0])
            .collect();
        assert!(gaps.iter().all(|g| *g == gaps[0]), "even spacing");
    }
}
