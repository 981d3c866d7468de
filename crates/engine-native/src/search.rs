//! The SLO search (`profile.kind = "search"`): the synchronous probe, then rate steps whose
//! rates `bench_core::search::RateSearch` chooses from the verdicts so far. Each step is one
//! benchmark, drained before it like a sweep's, so no step measures the previous one's
//! backlog; the report holds every step's benchmark and the `search` block.

use std::sync::Arc;

use bench_core::config::{Config, Strategy, DEFAULT_MAX_CONCURRENCY};
use bench_core::schema::Report;
use bench_core::search::RateSearch;
use bench_core::RunContext;

use crate::runner::Shared;
use crate::workload::Workload;
use crate::NativeEngine;

/// Runs the search on `workload`, adding its benchmarks and its `search` block to `report`.
pub(crate) async fn run(
    engine: &NativeEngine,
    shared: &Arc<Shared>,
    config: &Config,
    ctx: &RunContext,
    (label, requests): (String, Arc<Workload>),
    report: &mut Report,
) {
    let profile = &config.profile;
    let settings = profile.search.unwrap_or_default();
    // Validation refuses a search without objectives.
    let slo = config.slo.unwrap_or_default();
    let mut search = RateSearch::new(settings, profile.strategy.unwrap_or_default(), slo);
    // The most benchmarks it can run, for progress ("benchmark 3 of 11").
    let of = settings.max_steps as usize + usize::from(settings.start_rate.is_none());
    if settings.start_rate.is_none() && !ctx.cancel.is_cancelled() {
        let index = report.benchmarks.len();
        let probe = Strategy {
            kind: bench_core::config::StrategyKind::Synchronous,
            streams: Some(1),
            target_rate_per_s: None,
            max_concurrency: None,
            burstiness: None,
            speedup: None,
        };
        let ran = engine
            .benchmark(
                shared,
                config,
                ctx,
                (index, of),
                probe,
                label.clone(),
                requests.clone(),
            )
            .await;
        let rate = ran
            .benchmark
            .metrics
            .rates
            .requests_per_s
            .as_ref()
            .and_then(|r| r.successful);
        // A probe cut short by an interruption is no verdict.
        if ctx.cancel.is_cancelled() {
            search.interrupt();
        } else {
            search.probe(index, rate, ran.slo_counts);
        }
        report.benchmarks.push(ran.benchmark);
    }
    let max_concurrency = profile.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    while let Some(rate) = search.next_rate() {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let index = report.benchmarks.len();
        let strategy = Strategy {
            kind: search.strategy(),
            streams: None,
            target_rate_per_s: Some(rate),
            max_concurrency: Some(max_concurrency),
            burstiness: profile.burstiness,
            speedup: None,
        };
        let ran = engine
            .benchmark(
                shared,
                config,
                ctx,
                (index, of),
                strategy,
                label.clone(),
                requests.clone(),
            )
            .await;
        // A step cut short by an interruption is no verdict.
        if ctx.cancel.is_cancelled() {
            report.benchmarks.push(ran.benchmark);
            break;
        }
        search.record(index, rate, ran.slo_counts);
        tracing::info!(
            "search step {}: {rate:.3} req/s, {} of {} requests met the SLOs",
            index + 1,
            ran.slo_counts.met,
            ran.slo_counts.judged
        );
        report.benchmarks.push(ran.benchmark);
    }
    if ctx.cancel.is_cancelled() {
        search.interrupt();
    }
    let found = search.finish();
    tracing::info!("search: {}", found.answer.statement);
    report.search = Some(found);
}
