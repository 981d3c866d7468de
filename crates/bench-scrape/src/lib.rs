//! Scraping the server's own Prometheus `/metrics` during each benchmark (`[target.metrics]`):
//! a thread of its own per benchmark, so a slow or large metrics page never delays a request,
//! that reads the page every interval and folds it into the report's `server` block in the
//! common set (`names.rs`), whatever the server's naming. A failed scrape is counted, never
//! fatal.
//!
//! `drain.rs` waits, before each benchmark, for the server to finish what an earlier one left.
//! `text.rs` reads the exposition format, `names.rs` maps the servers' names onto the common
//! set, `window.rs` folds a benchmark's scrapes in bounded memory.

pub mod drain;
mod names;
mod text;
mod window;

use std::time::{Duration, Instant};

use bench_core::config::{Config, ScrapeMode, ServerMetricsScrape, Target};
use bench_core::schema::{ScrapeStatus, ServerMetrics, Timestamp, Warning};
use bench_core::ConfigError;
use tokio::sync::oneshot;

pub use window::ClientTokens;
use window::Window;

/// Longest wait for one page, whatever the interval: the last scrape of a benchmark waits for
/// it before the next benchmark starts.
const MAX_SCRAPE_WAIT: Duration = Duration::from_secs(10);

/// The run's scraping settings: what to scrape and how.
#[derive(Debug, Clone)]
pub struct Scraper {
    settings: ServerMetricsScrape,
    url: reqwest::Url,
    /// The target's client settings (TLS, timeouts), with its API key and headers only when
    /// the metrics are on the target's own host.
    target: Target,
}

impl Scraper {
    /// The scraper `config` asks for; `None` without `[target.metrics]`, with `mode = "off"`,
    /// or without a target URL yet (the embedded mock's is set when it starts); an error
    /// naming the key when the metrics URL cannot be parsed.
    pub fn new(config: &Config) -> Result<Option<Self>, ConfigError> {
        let Some(settings) = config.target.metrics.clone() else {
            return Ok(None);
        };
        let Some(base) = config.target.url.as_deref() else {
            return Ok(None);
        };
        if settings.mode == ScrapeMode::Off {
            return Ok(None);
        }
        let invalid = |key: &str, given: &str, e: String| ConfigError::InvalidValue {
            key: key.to_owned(),
            message: format!("`{given}` is not a URL the metrics can be read from: {e}"),
        };
        let base =
            reqwest::Url::parse(base).map_err(|e| invalid("target.url", base, e.to_string()))?;
        let url = match &settings.url {
            Some(url) => reqwest::Url::parse(url)
                .map_err(|e| invalid("target.metrics.url", url, e.to_string()))?,
            None => base
                .join("/metrics")
                .map_err(|e| invalid("target.url", base.as_str(), e.to_string()))?,
        };
        let mut target = config.target.clone();
        if url.host_str() != base.host_str()
            || url.port_or_known_default() != base.port_or_known_default()
        {
            target.api_key_env = String::new();
            target.headers.clear();
        }
        Ok(Some(Self {
            settings,
            url,
            target,
        }))
    }

    /// Starts scraping a benchmark and returns once the first page has been read (or failed),
    /// so that the counters' baseline comes before the benchmark's first request.
    pub async fn begin(&self) -> Scraping {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let job = Job {
            scraper: self.clone(),
            interval: Duration::from_secs_f64(self.settings.interval_seconds),
        };
        let spawned = std::thread::Builder::new()
            .name("llm-bench-scrape".to_owned())
            .spawn(move || job.run(ready_tx, stop_rx, done_tx));
        if let Err(e) = spawned {
            return Scraping {
                stop: None,
                done: None,
                unstarted: Some(self.unstarted(format!("cannot start the scraping thread: {e}"))),
            };
        }
        let _ = ready_rx.await;
        Scraping {
            stop: Some(stop_tx),
            done: Some(done_rx),
            unstarted: None,
        }
    }

    fn unstarted(&self, error: String) -> ServerMetrics {
        let mut window = Window::new(false);
        window.failed(error);
        self.finish(Timestamp::now(), window, false, None, None)
    }

    fn finish(
        &self,
        started_at: Timestamp,
        window: Window,
        absent: bool,
        client: Option<ClientTokens>,
        cpu_ms_per_scrape: Option<f64>,
    ) -> ServerMetrics {
        let mut metrics = window.finish(
            started_at,
            self.url.to_string(),
            self.settings.interval_seconds,
            absent,
            client,
            self.settings.token_tolerance,
        );
        metrics.cpu_ms_per_scrape = cpu_ms_per_scrape;
        metrics
    }
}

/// A benchmark being scraped.
#[derive(Debug)]
pub struct Scraping {
    stop: Option<oneshot::Sender<Option<ClientTokens>>>,
    done: Option<oneshot::Receiver<ServerMetrics>>,
    unstarted: Option<ServerMetrics>,
}

impl Scraping {
    /// Takes the last page (after the benchmark's last request ended) and returns the
    /// benchmark's block, with the token check against `client` when given.
    pub async fn end(mut self, client: Option<ClientTokens>) -> ServerMetrics {
        if let Some(metrics) = self.unstarted.take() {
            return metrics;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(client);
        }
        match self.done.take() {
            Some(done) => done.await.unwrap_or_else(|_| gone()),
            None => gone(),
        }
    }
}

fn gone() -> ServerMetrics {
    let mut window = Window::new(false);
    window.failed("the scraping thread ended early".to_owned());
    window.finish(Timestamp::now(), String::new(), 0.0, false, None, 0.0)
}

/// The warnings a benchmark's block calls for: nothing could be read (unless `auto` found no
/// endpoint), or the server's token counts disagree with the client's.
pub fn warnings(metrics: &ServerMetrics, settings: &ServerMetricsScrape) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if metrics.status == ScrapeStatus::Failed {
        warnings.push(Warning {
            code: "server_metrics_unavailable".to_owned(),
            message: format!(
                "no scrape of the server's metrics at {} succeeded ({} failed; the last: {}); the client's figures are unaffected (target.metrics.mode = \"auto\" skips an absent endpoint quietly)",
                metrics.url,
                metrics.failed_scrapes,
                metrics.last_error.as_deref().unwrap_or("unknown")
            ),
        });
    }
    if let Some(check) = &metrics.token_check {
        if check.agrees == Some(false) {
            warnings.push(Warning {
                code: "server_tokens_disagree".to_owned(),
                message: format!(
                    "the server generated {} tokens over the benchmark and the client counted {} output tokens ({:.1} % apart, more than target.metrics.token_tolerance = {}): another client on the server, requests cancelled after the server generated tokens, or a server that counts another way",
                    shown(check.server_generation_tokens),
                    check.client_output_tokens,
                    check.relative_difference.unwrap_or(0.0) * 100.0,
                    settings.token_tolerance
                ),
            });
        }
    }
    warnings
}

/// The sum of the samples named in `names` on a Prometheus text page, over all their label
/// sets (a negative or non-finite value counts as 0 or not at all), or `None` when none of
/// them is on it; malformed lines are skipped. The drain reads in-flight gauges with it.
pub fn sum_of(text: &str, names: &[&str]) -> Option<f64> {
    text::parse(text)
        .samples
        .iter()
        .filter(|s| names.contains(&s.name) && s.value.is_finite())
        .map(|s| s.value.max(0.0))
        .reduce(|a, b| a + b)
}

fn shown(value: Option<f64>) -> String {
    value.map_or("no".to_owned(), |v| format!("{v:.0}"))
}

/// The scraping thread's work for one benchmark.
struct Job {
    scraper: Scraper,
    interval: Duration,
}

impl Job {
    fn run(
        self,
        ready: oneshot::Sender<()>,
        stop: oneshot::Receiver<Option<ClientTokens>>,
        done: oneshot::Sender<ServerMetrics>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready.send(());
                let _ = done.send(
                    self.scraper
                        .unstarted(format!("cannot start the scraping runtime: {e}")),
                );
                return;
            }
        };
        let metrics = runtime.block_on(self.scrape(ready, stop));
        let _ = done.send(metrics);
    }

    async fn scrape(
        &self,
        ready: oneshot::Sender<()>,
        mut stop: oneshot::Receiver<Option<ClientTokens>>,
    ) -> ServerMetrics {
        let scraper = &self.scraper;
        let (start, started_at) = (Instant::now(), Timestamp::now());
        let wait = self.interval.min(MAX_SCRAPE_WAIT);
        let client = match bench_target::client_builder(&scraper.target)
            .map_err(|e| e.to_string())
            .and_then(|b| b.timeout(wait).build().map_err(|e| e.to_string()))
        {
            Ok(client) => client,
            Err(e) => {
                let _ = ready.send(());
                return scraper.unstarted(format!("cannot build the HTTP client: {e}"));
            }
        };
        let mut window = Window::new(scraper.settings.keep_unmapped);
        let mut cpu = Cpu::default();
        self.once(&client, &mut window, start, &mut cpu).await;
        let _ = ready.send(());
        let absent = scraper.settings.mode == ScrapeMode::Auto && window.scrapes() == 0;
        let client_tokens = if absent {
            // `auto`: no endpoint, nothing more to try in this benchmark.
            stop.await.ok().flatten()
        } else {
            let mut ticker =
                tokio::time::interval_at((start + self.interval).into(), self.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let tokens = loop {
                tokio::select! {
                    biased;
                    tokens = &mut stop => break tokens.ok().flatten(),
                    _ = ticker.tick() => {
                        tokio::select! {
                            biased;
                            tokens = &mut stop => break tokens.ok().flatten(),
                            () = self.once(&client, &mut window, start, &mut cpu) => {}
                        }
                    }
                }
            };
            // The last page, after the benchmark's requests ended: the counters' end.
            self.once(&client, &mut window, start, &mut cpu).await;
            tokens
        };
        scraper.finish(
            started_at,
            window,
            absent,
            client_tokens,
            cpu.per_scrape_ms(),
        )
    }

    /// One scrape: the page read, parsed and folded, or the failure counted.
    async fn once(
        &self,
        client: &reqwest::Client,
        window: &mut Window,
        start: Instant,
        cpu: &mut Cpu,
    ) {
        let before = thread_cpu();
        let t = start.elapsed().as_secs_f64();
        match fetch(client, &self.scraper.url).await {
            Ok(body) => {
                let page = text::parse(&body);
                if page.samples.is_empty() {
                    window.failed(format!(
                        "the answer is not Prometheus text (first bytes: {:?})",
                        body.chars().take(60).collect::<String>()
                    ));
                } else {
                    let reading = window::read(&page, window.keep_unmapped());
                    window.add(t, reading);
                }
            }
            Err(e) => window.failed(e),
        }
        cpu.add(before, thread_cpu());
    }
}

/// The page's text, or what went wrong.
async fn fetch(client: &reqwest::Client, url: &reqwest::Url) -> Result<String, String> {
    let response = client.get(url.clone()).send().await.map_err(|e| {
        if e.is_timeout() {
            "no answer within the scrape interval".to_owned()
        } else {
            format!("the request failed: {e}")
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    response
        .text()
        .await
        .map_err(|e| format!("the body could not be read: {e}"))
}

/// The scraping thread's CPU time over its scrapes.
#[derive(Debug, Default)]
struct Cpu {
    total: Duration,
    scrapes: u32,
}

impl Cpu {
    fn add(&mut self, before: Option<Duration>, after: Option<Duration>) {
        if let (Some(before), Some(after)) = (before, after) {
            self.total += after.saturating_sub(before);
            self.scrapes += 1;
        }
    }

    fn per_scrape_ms(&self) -> Option<f64> {
        (self.scrapes > 0).then(|| self.total.as_secs_f64() * 1000.0 / f64::from(self.scrapes))
    }
}

/// This thread's CPU time so far.
fn thread_cpu() -> Option<Duration> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(Duration::from(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(metrics: &str) -> Config {
        let text = format!(
            "[target]\nurl = \"http://127.0.0.1:8000\"\nmodel = \"m\"\n{metrics}\n[profile]\nkind = \"synchronous\"\n\
             [constraints]\nmax_requests = 1\n[data]\nkind = \"synthetic\"\nprompt_tokens = 4\noutput_tokens = 4\napproximate = true\n"
        );
        Config::load(&text, bench_core::config::ConfigFormat::Toml, &[]).unwrap()
    }

    #[test]
    fn the_metrics_url_defaults_to_the_targets_and_a_bad_one_names_its_key() {
        assert!(Scraper::new(&config("")).unwrap().is_none());
        assert!(Scraper::new(&config("[target.metrics]\nmode = \"off\""))
            .unwrap()
            .is_none());
        let scraper = Scraper::new(&config("[target.metrics]")).unwrap().unwrap();
        assert_eq!(scraper.url.as_str(), "http://127.0.0.1:8000/metrics");
        let error = Scraper::new(&config(
            "[target.metrics]\nurl = \"http://exa mple/metrics\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(
                "invalid `target.metrics.url`: `http://exa mple/metrics` is not a URL"
            ),
            "{error}"
        );
        // Another host gets neither the API key nor the headers.
        let other = Scraper::new(&config(
            "headers = { \"X-Team\" = \"a\" }\n[target.metrics]\nurl = \"http://127.0.0.1:9100/metrics\"",
        ))
        .unwrap()
        .unwrap();
        assert!(other.target.headers.is_empty() && other.target.api_key_env.is_empty());
    }
}
