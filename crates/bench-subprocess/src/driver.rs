//! The per-point driver: the config's benchmarks in order, one tool invocation each, with
//! progress events, cancellation, sweep rate steps resolved as every engine resolves them, the
//! drain before each point and the server's metrics around it (as the native engine has them),
//! and an invocation's end (exit, timeout, cancellation, missing results) turned into a
//! benchmark.

use std::sync::Arc;
use std::time::Duration;

use bench_core::config::{Config, PlannedBenchmark, ProfileKind, Strategy, StrategyKind};
use bench_core::live::LiveBenchmark;
use bench_core::measure::{BenchmarkBuilder, Head};
use bench_core::progress::ProgressEvent;
use bench_core::schema::{Benchmark, Report, StopReason, Timestamp, Warning, Window};
use bench_core::sweep::SweepEnds;
use bench_core::{EngineError, RunContext};
use bench_scrape::drain::{DrainTimeout, Drained, Drainer};
use bench_scrape::{Scraper, Scraping};

use crate::process::{Finished, Stopped};
use crate::Tool;

/// The exit status of a command-line usage error (click's, argparse's): every point would
/// fail the same way.
const USAGE_ERROR: i32 = 2;

/// One benchmark of the plan, its strategy resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Position in the run, from 0.
    pub index: usize,
    /// How many benchmarks the plan has.
    pub of: usize,
    /// How load is generated.
    pub strategy: Strategy,
    /// The workload label.
    pub workload: String,
}

/// Walks the config's plan, one point at a time, for an engine that measures each point with
/// one invocation of its tool:
///
/// ```ignore
/// let mut points = Points::new(config, &TOOL, drain_timeout_seconds)?;
/// while let Some(point) = points.next(ctx, &mut report).await {
///     let benchmark = /* run the tool for `point`, then `settle` */;
///     points.finished(&point, benchmark, config, ctx, &mut report).await;
/// }
/// points.end(ctx, &mut report);
/// ```
///
/// A sweep's rate steps get their rates from the synchronous and throughput points measured
/// before them; a step without them is skipped with the `sweep_incomplete` warning. Before
/// each point the server is drained of what the one before left (a tool that stops at its time
/// limit leaves its requests running in the server), and with `[target.metrics]` its metrics
/// are scraped from then until the tool has ended.
#[derive(Debug)]
pub struct Points {
    planned: Vec<PlannedBenchmark>,
    next: usize,
    /// Per workload, the ends of its sweep.
    ends: Vec<(String, SweepEnds)>,
    /// The drain's and the scraper's HTTP client, with the target's settings.
    client: reqwest::Client,
    drainer: Drainer,
    scraper: Option<Scraper>,
    /// The point in progress: its drain and its scraping.
    watching: Option<(Drained, Option<Scraping>)>,
    /// The engine's name, as the live export labels its benchmarks.
    engine: &'static str,
    /// The point in progress in the live export, when the run has one.
    live: Option<Arc<LiveBenchmark>>,
}

impl Points {
    /// The plan of `config`, nothing run yet, for `tool`, whose engine's
    /// `drain_timeout_seconds` is `drain_timeout`.
    pub fn new(
        config: &Config,
        tool: &Tool,
        drain_timeout: DrainTimeout,
    ) -> Result<Self, EngineError> {
        let completion_url = bench_target::completion_url(&config.target);
        Ok(Self {
            planned: config.plan(),
            next: 0,
            ends: Vec::new(),
            client: bench_target::client(&config.target)?,
            drainer: Drainer::new(
                completion_url,
                drain_timeout,
                &format!("engines.{}.drain_timeout_seconds", tool.engine),
                bench_target::probe_body(&config.target, true),
                format!("drain-probe-{:08x}", rand::random::<u32>()),
            ),
            scraper: Scraper::new(config)?,
            watching: None,
            engine: tool.engine,
            live: None,
        })
    }

    /// The next point to measure, after the drain, announced as started; `None` when the
    /// plan is done or the run was cancelled.
    pub async fn next(&mut self, ctx: &RunContext, report: &mut Report) -> Option<Point> {
        let of = self.planned.len();
        while self.next < of && !ctx.cancel.is_cancelled() {
            let index = self.next;
            self.next += 1;
            let step = self.planned[index].clone();
            let strategy = match self.ends(&step.workload).strategy(&step.strategy) {
                Ok(strategy) => strategy,
                Err(warning) => {
                    tracing::warn!("benchmark {} of {of}: {}", index + 1, warning.message);
                    report.warnings.push(warning);
                    continue;
                }
            };
            // The tool's requests of the point before may still run in the server.
            let drained = self.drainer.before(&self.client, index, &ctx.cancel).await;
            // The server's metrics from just before the tool starts to just after it ended.
            let scraping = match &self.scraper {
                Some(scraper) => Some(scraper.begin().await),
                None => None,
            };
            self.watching = Some((drained, scraping));
            self.live = ctx
                .live()
                .map(|live| live.benchmark(self.engine, index, &strategy));
            ctx.progress.event(&ProgressEvent::BenchmarkStarted {
                index,
                of: Some(of),
                strategy: strategy.clone(),
                workload: step.workload.clone(),
            });
            return Some(Point {
                index,
                of,
                strategy,
                workload: step.workload,
            });
        }
        None
    }

    /// The point in progress in the live export (`run --metrics-listen`), for the parser to
    /// give every request it counts (`LiveBenchmark::add` beside `BenchmarkBuilder::add`);
    /// `None` without an export.
    /// The tool's requests are known only when it has ended, so they arrive all at once.
    pub fn live(&self) -> Option<Arc<LiveBenchmark>> {
        self.live.clone()
    }

    /// Records the point's benchmark, with its drain and the server's metrics: into the
    /// sweep's ends, as a progress event, and into the report.
    pub async fn finished(
        &mut self,
        point: &Point,
        mut benchmark: Benchmark,
        config: &Config,
        ctx: &RunContext,
        report: &mut Report,
    ) {
        if let Some((drained, scraping)) = self.watching.take() {
            if let (Some(scraping), Some(settings)) = (scraping, &config.target.metrics) {
                // No token check: a tool's report leaves out its warmup's requests and may
                // count tokens with its own tokenizer, so it cannot match the server's counter.
                let server = scraping.end(None).await;
                benchmark
                    .warnings
                    .extend(bench_scrape::warnings(&server, settings));
                benchmark.server = Some(server);
            }
            self.drainer
                .attach(drained, &mut benchmark, ctx.cancel.is_cancelled());
        }
        if let Some(live) = self.live.take() {
            live.finish();
        }
        let sweep = self.ends(&point.workload);
        sweep.observe(
            point.strategy.kind,
            benchmark
                .metrics
                .rates
                .requests_per_s
                .as_ref()
                .and_then(|r| r.successful),
        );
        if point.strategy.kind == StrategyKind::Throughput
            && config.profile.kind == ProfileKind::Sweep
        {
            report.warnings.extend(sweep.inverted());
        }
        ctx.progress.event(&ProgressEvent::BenchmarkFinished {
            index: point.index,
            benchmark: Box::new(benchmark.clone()),
        });
        report.benchmarks.push(benchmark);
    }

    /// Closes the report: interrupted when the run was cancelled, and its end time.
    pub fn end(self, ctx: &RunContext, report: &mut Report) {
        report.interrupted = ctx.cancel.is_cancelled();
        report.ended_at = Timestamp::now();
    }

    fn ends(&mut self, workload: &str) -> &mut SweepEnds {
        let position = match self.ends.iter().position(|(w, _)| w == workload) {
            Some(i) => i,
            None => {
                self.ends.push((workload.to_owned(), SweepEnds::default()));
                self.ends.len() - 1
            }
        };
        &mut self.ends[position].1
    }
}

/// The point's benchmark from how its invocation `finished` and what reading its results
/// gave (`parsed`): results as they are (marked interrupted when cancelled); without results,
/// an empty benchmark whose warning says how the tool ended and quotes its last output. A
/// usage error at the first point is an error, as every point would fail the same way.
pub fn settle(
    tool: &Tool,
    point: &Point,
    finished: &Finished,
    timeout: Duration,
    spawned: Timestamp,
    parsed: Result<Benchmark, String>,
) -> Result<Benchmark, EngineError> {
    match (parsed, finished.stopped) {
        (Ok(mut benchmark), stopped) => {
            if stopped == Some(Stopped::Cancelled) {
                benchmark.stopped_by = Some(StopReason::Interrupted);
            }
            Ok(benchmark)
        }
        (Err(_), Some(Stopped::Cancelled)) => Ok(empty(
            tool,
            point,
            spawned,
            Some(StopReason::Interrupted),
            format!("interrupted before {} wrote results", tool.engine),
        )),
        (Err(why), stopped) => {
            let how = match (stopped, finished.status.code()) {
                (Some(Stopped::Timeout), _) => format!(
                    "was stopped after {:.0} s (its time limit plus engines.{}.overhead_seconds)",
                    timeout.as_secs_f64(),
                    tool.engine
                ),
                (_, Some(code)) => format!("exited with status {code}"),
                (_, None) => "was killed by a signal".to_owned(),
            };
            let tail = finished.tail.join("\n");
            if point.index == 0 && finished.status.code() == Some(USAGE_ERROR) {
                return Err(tool.failed(format!(
                    "{} {how} ({why}); a usage error, so the installed {} may not be {} ({}). Its last output:\n{tail}",
                    tool.engine, tool.engine, tool.tested_version, tool.install_hint
                )));
            }
            tracing::warn!(
                "{} point {} failed: {how}: {why}",
                tool.engine,
                point.index + 1
            );
            Ok(empty(
                tool,
                point,
                spawned,
                None,
                format!(
                    "{} {how} and left no usable results ({why}); its last output:\n{tail}",
                    tool.engine
                ),
            ))
        }
    }
}

/// A benchmark that measured nothing, with the reason as a warning.
fn empty(
    tool: &Tool,
    point: &Point,
    at: Timestamp,
    stopped_by: Option<StopReason>,
    why: String,
) -> Benchmark {
    BenchmarkBuilder::new().finish(Head {
        index: point.index,
        strategy: point.strategy.clone(),
        workload: point.workload.clone(),
        window: Window {
            start: at,
            end: at,
            duration_s: 0.0,
        },
        stopped_by,
        warnings: vec![Warning {
            code: format!("{}_failed", tool.code),
            message: why,
        }],
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::sync::{Arc, Mutex};

    use bench_core::config::ConfigFormat;
    use bench_core::progress::ProgressSink;
    use bench_core::schema::RequestTotals;
    use bench_core::CancelToken;

    use super::*;
    use crate::tests::TOOL;

    #[derive(Default)]
    struct Events(Mutex<Vec<String>>);

    impl ProgressSink for Events {
        fn event(&self, event: &ProgressEvent) {
            let line = match event {
                ProgressEvent::BenchmarkStarted { index, .. } => format!("started {index}"),
                ProgressEvent::BenchmarkFinished { index, .. } => format!("finished {index}"),
                _ => return,
            };
            self.0.lock().unwrap().push(line);
        }
    }

    fn config(profile: &str) -> Config {
        Config::load(
            &format!("[target]\nurl = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n[data]\nkind = \"synthetic\"\nprompt_tokens = 4\noutput_tokens = 4\napproximate = true\n[profile]\n{profile}\n[constraints]\nmax_requests = 5\n"),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap()
    }

    /// A benchmark at `rate` successful requests per second over one second.
    fn measured(point: &Point, rate: u64) -> Benchmark {
        let mut b = BenchmarkBuilder::new();
        for _ in 0..rate {
            b.add(&bench_core::measure::RequestRecord::new(
                bench_core::measure::Ended::Successful,
            ));
        }
        let start = Timestamp::from_unix_micros(1_000_000);
        b.finish(Head {
            index: point.index,
            strategy: point.strategy.clone(),
            workload: point.workload.clone(),
            window: Window {
                start,
                end: start.plus(Duration::from_secs(1)),
                duration_s: 1.0,
            },
            stopped_by: None,
            warnings: Vec::new(),
        })
    }

    #[tokio::test]
    async fn a_sweep_runs_point_by_point_with_rate_steps_from_the_measured_ends() {
        let config = config("kind = \"sweep\"\nsweep_size = 4");
        let events = Arc::new(Events::default());
        let ctx = RunContext::new(events.clone(), CancelToken::new());
        let mut report = Report::new("fake-tool", &config);
        let mut seen = Vec::new();
        let mut points = Points::new(&config, &TOOL, DrainTimeout::default()).unwrap();
        while let Some(point) = points.next(&ctx, &mut report).await {
            seen.push((point.strategy.kind, point.strategy.target_rate_per_s));
            // Synchronous 2 req/s, throughput 8 req/s.
            let rate = if point.strategy.kind == StrategyKind::Synchronous {
                2
            } else {
                8
            };
            let benchmark = measured(&point, rate);
            points
                .finished(&point, benchmark, &config, &ctx, &mut report)
                .await;
        }
        points.end(&ctx, &mut report);
        assert_eq!(
            seen,
            [
                (StrategyKind::Synchronous, None),
                (StrategyKind::Throughput, None),
                (StrategyKind::Constant, Some(5.0)),
                (StrategyKind::Constant, Some(8.0)),
            ]
        );
        assert_eq!(report.benchmarks.len(), 4);
        assert!(!report.interrupted);
        assert_eq!(
            events.0.lock().unwrap()[..2],
            ["started 0".to_owned(), "finished 0".to_owned()]
        );
    }

    #[tokio::test]
    async fn a_cancelled_run_stops_before_the_next_point_and_says_so() {
        let config = config("kind = \"concurrent\"\nstreams = [1, 2, 4]");
        let cancel = CancelToken::new();
        let ctx = RunContext::new(Arc::new(Events::default()), cancel.clone());
        let mut report = Report::new("fake-tool", &config);
        let mut points = Points::new(&config, &TOOL, DrainTimeout::default()).unwrap();
        while let Some(point) = points.next(&ctx, &mut report).await {
            cancel.cancel();
            let benchmark = measured(&point, 1);
            points
                .finished(&point, benchmark, &config, &ctx, &mut report)
                .await;
        }
        points.end(&ctx, &mut report);
        assert_eq!(report.benchmarks.len(), 1);
        assert!(report.interrupted);
    }

    /// A tool's point starts after the server has finished what the point before left, and
    /// the benchmark carries that drain and the server's metrics over the point.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_point_waits_for_the_servers_backlog_and_carries_its_metrics() {
        // Two slots, about 0.55 s a request: 8 requests in flight keep it busy for ~2 s.
        let mock = bench_mock::MockServer::start(bench_mock::MockConfig {
            max_batch: 2,
            ttft_ms: 150.0,
            itl_ms: 20.0,
            output_tokens: 20,
            ..bench_mock::MockConfig::default()
        })
        .await
        .unwrap();
        let config = Config::load(
            &format!("[target]\nurl = \"{}\"\nmodel = \"m\"\n[target.metrics]\nmode = \"on\"\ninterval_seconds = 0.2\n[data]\nkind = \"synthetic\"\nprompt_tokens = 4\noutput_tokens = 4\napproximate = true\n[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 5\n", mock.base_url()),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap();
        let url = bench_target::completion_url(&config.target);
        let body = bench_target::probe_body(&config.target, true);
        let client = bench_target::plain_client().unwrap();
        let backlog: Vec<_> = (0..8)
            .map(|_| {
                let request = client.post(&url).body(body.clone()).send();
                tokio::spawn(async move { request.await.unwrap().bytes().await.unwrap() })
            })
            .collect();
        // Let the requests reach the server.
        while mock.stats().requests < 8 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ctx = RunContext::new(Arc::new(Events::default()), CancelToken::new());
        let mut report = Report::new("fake-tool", &config);
        let mut points = Points::new(&config, &TOOL, DrainTimeout::default()).unwrap();
        let point = points.next(&ctx, &mut report).await.unwrap();
        for request in backlog {
            assert!(
                request.is_finished(),
                "the point started while the backlog ran"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        points
            .finished(&point, measured(&point, 1), &config, &ctx, &mut report)
            .await;
        let b = &report.benchmarks[0];
        let drain = b.drain.unwrap();
        assert_eq!(drain.outcome, bench_core::schema::DrainOutcome::Idle);
        assert!(drain.seconds > 0.5, "{drain:?}");
        let server = b
            .server
            .as_ref()
            .expect("the server's metrics over the point");
        assert!(server.scrapes >= 3, "{server:?}");
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    }

    fn finished(code: i32, stopped: Option<Stopped>) -> Finished {
        Finished {
            status: std::process::ExitStatus::from_raw(code << 8),
            stopped,
            tail: vec!["Error: no such option".to_owned()],
        }
    }

    #[test]
    fn an_invocation_without_results_becomes_an_empty_benchmark_saying_how_it_ended() {
        let point = Point {
            index: 1,
            of: 2,
            strategy: Strategy {
                kind: StrategyKind::Concurrent,
                streams: Some(2),
                target_rate_per_s: None,
                max_concurrency: None,
                burstiness: None,
                speedup: None,
            },
            workload: "D(1,1)".to_owned(),
        };
        let limit = Duration::from_secs(60);
        let settled = |point: &Point, finished: Finished, parsed: Result<Benchmark, String>| {
            settle(
                &TOOL,
                point,
                &finished,
                limit,
                Timestamp::from_unix_micros(5),
                parsed,
            )
        };
        let no_file = || Err("no file".to_owned());
        let b = settled(&point, finished(1, None), no_file()).unwrap();
        assert_eq!(b.requests, RequestTotals::default());
        assert_eq!(b.warnings[0].code, "fake_tool_failed");
        assert!(b.warnings[0]
            .message
            .contains("exited with status 1 and left no usable results (no file)"));
        assert!(b.warnings[0].message.ends_with("Error: no such option"));

        let b = settled(&point, finished(0, Some(Stopped::Timeout)), no_file()).unwrap();
        assert!(
            b.warnings[0].message.contains("was stopped after 60 s"),
            "{:?}",
            b.warnings
        );

        let b = settled(&point, finished(0, Some(Stopped::Cancelled)), no_file()).unwrap();
        assert_eq!(b.stopped_by, Some(StopReason::Interrupted));

        let ok = measured(&point, 3);
        let b = settled(&point, finished(0, Some(Stopped::Cancelled)), Ok(ok)).unwrap();
        assert_eq!(
            (b.stopped_by, b.requests.successful),
            (Some(StopReason::Interrupted), 3)
        );

        // A usage error at the first point stops the run.
        let first = Point {
            index: 0,
            ..point.clone()
        };
        let error = settled(&first, finished(2, None), no_file()).unwrap_err();
        let EngineError::Failed { source, .. } = error else {
            panic!("{error:?}")
        };
        assert!(source.to_string().contains("a usage error"), "{source}");
    }
}
