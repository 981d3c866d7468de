//! Runs one benchmark: generates load in one pattern, enforces the constraints, reports
//! progress, and hands the finished requests to the [`Aggregator`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_core::config::{Constraints, SaturationMode, Strategy, StrategyKind};
use bench_core::progress::{ProgressEvent, ProgressSink, ProgressUpdate};
use bench_core::schema::{Benchmark, StopReason, Warning};
use bench_core::CancelToken;
use bench_timer::Timer;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio::task::JoinSet;

use bench_core::config::limits::duration_from_secs;

use crate::aggregate::{after, Aggregator, Boundary, Clock};
use crate::arrivals::{Arrivals, Process, Schedule};
use crate::client::{self, Endpoint, Outcome};
use crate::workload::Workload;

/// What every benchmark of a run shares.
pub(crate) struct Shared {
    pub(crate) endpoint: Endpoint,
    pub(crate) timer: Timer,
    pub(crate) clock: Clock,
    pub(crate) progress: Arc<dyn ProgressSink>,
    pub(crate) run_cancel: CancelToken,
    /// Where the caller wants each benchmark's live figures, if anywhere.
    pub(crate) live: Option<Arc<bench_core::live::LiveMetrics>>,
    pub(crate) records: Option<crate::records::Records>,
    pub(crate) retry: Retry,
    /// Waits before each benchmark for the server to finish what an earlier one left.
    pub(crate) drainer: bench_scrape::drain::Drainer,
    /// What every benchmark's transport block says before its counts: scheme, TLS, proxy.
    pub(crate) transport: bench_core::schema::Transport,
    /// The connections the client opened: each benchmark takes those opened since the one
    /// before (the drain's before it included).
    pub(crate) connections: Arc<crate::setup::Opened>,
    /// Scrapes the server's `/metrics` around each benchmark (`[target.metrics]`).
    pub(crate) scraper: Option<bench_scrape::Scraper>,
    /// Drawn afresh for every run and put before every request id, so the `x-request-id`s
    /// of two clients (shards, parallel runs) never collide: vLLM takes the header as its
    /// engine's request id, which must be unique among the requests it holds.
    pub(crate) request_tag: String,
}

/// Retries of failed requests (`[engines.native] retries`); off by default. Every attempt is a
/// request of its own: claimed against `max_requests`, counted in the totals, recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Retry {
    /// Further attempts after the first.
    pub(crate) max: u32,
    /// HTTP statuses that are retried.
    pub(crate) on_status: Vec<u16>,
}

/// Longest wait before a retry, whatever `Retry-After` asks.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);
/// The first wait when the server gives no `Retry-After`; it doubles per attempt.
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(100);

/// One benchmark to run.
pub(crate) struct Plan {
    pub(crate) index: usize,
    pub(crate) of: usize,
    pub(crate) strategy: Strategy,
    pub(crate) workload: String,
    pub(crate) requests: Arc<Workload>,
    pub(crate) constraints: Constraints,
    pub(crate) warmup: Option<Boundary>,
    pub(crate) cooldown: Option<Boundary>,
    pub(crate) rampup_s: f64,
    /// Seconds before the first arrival of an open-loop schedule: a shard's place in the
    /// whole run's even schedule (`shard::first_arrival_s`).
    pub(crate) first_arrival_s: f64,
    pub(crate) seed: u64,
    pub(crate) slo: Option<bench_core::config::Slo>,
    /// A throughput benchmark without an explicit `max_concurrency`: its streams grow to the
    /// server's level (`sizing`), up to `strategy.max_concurrency`.
    pub(crate) sized: bool,
}

/// What sizing a throughput benchmark found.
#[derive(Debug, Default)]
struct Sized {
    levels: crate::sizing::Levels,
    /// The level held, when one was chosen.
    chosen: Option<u32>,
    /// When the plateau began, and the successful requests by then.
    plateau: Option<(Instant, u64)>,
}

/// The result, and the steady completion rate a sweep builds on.
pub(crate) struct Ran {
    pub(crate) benchmark: Benchmark,
    pub(crate) steady_rate: Option<f64>,
    /// The `[slo]` counts an SLO search judges the benchmark by.
    pub(crate) slo_counts: bench_core::search::StepCounts,
    /// Tokens of every request the benchmark finished, warmup and cooldown included, for the
    /// check against the server's counters.
    pub(crate) client_tokens: bench_scrape::ClientTokens,
}

/// The longest the pacer spins before an arrival (see `bench_timer::Pacer`): it wakes early by
/// the measured wake lateness, up to this, and spins only what remains of an early wake.
const PACER_MAX_SPIN: Duration = Duration::from_micros(100);

/// Share of all cores above which the client counts as the bottleneck.
const CPU_SATURATED: f64 = 0.9;

/// How a benchmark is told to stop.
struct Control {
    stopping: AtomicBool,
    /// Cancels requests in flight (time limit, error limits, interruption).
    in_flight: CancelToken,
    reason: Mutex<Option<StopReason>>,
}

impl Control {
    fn stop(&self, reason: StopReason, cancel_in_flight: bool) {
        let mut current = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        current.get_or_insert(reason);
        self.stopping.store(true, Ordering::SeqCst);
        if cancel_in_flight {
            self.in_flight.cancel();
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

struct Benchmarking {
    index: usize,
    requests: Arc<Workload>,
    shared: Arc<Shared>,
    aggregator: Mutex<Aggregator>,
    control: Control,
    constraints: Constraints,
    sized: Mutex<Sized>,
}

impl Benchmarking {
    fn lock(&self) -> std::sync::MutexGuard<'_, Aggregator> {
        self.aggregator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the right to send one more request, or stops scheduling at `max_requests`.
    fn claim(&self) -> bool {
        self.claim_arrival(None)
    }

    /// [`Benchmarking::claim`] for an arrival of the open-loop schedule: its intended time,
    /// and how long it waited for a `max_concurrency` permit if it had to.
    fn claim_arrival(&self, arrival: Option<(Instant, Option<Duration>)>) -> bool {
        if self.control.stopping() {
            return false;
        }
        let mut aggregator = self.lock();
        if self
            .constraints
            .max_requests
            .is_some_and(|max| aggregator.sent() >= max)
        {
            drop(aggregator);
            self.control.stop(StopReason::MaxRequests, false);
            return false;
        }
        aggregator.on_send();
        if let Some((intended, capped_wait)) = arrival {
            aggregator.on_arrival(intended, capped_wait);
        }
        true
    }

    /// Sends one claimed request and records it; retries it, each attempt a request of its
    /// own, when retries are on and the failure is one to retry.
    /// `prepared` is taken when the request must keep its place in the data's order (a
    /// trace's replay); otherwise the next one is taken now.
    async fn request(&self, intended: Instant, prepared: Option<crate::client::Prepared>) {
        let prepared = prepared.unwrap_or_else(|| self.requests.next());
        self.send(prepared, intended).await;
    }

    /// [`Benchmarking::request`] for a prepared request; returns its last attempt.
    async fn send(
        &self,
        mut prepared: crate::client::Prepared,
        intended: Instant,
    ) -> client::Exchange {
        let mut intended = intended;
        prepared.id = format!("{}-{}", self.shared.request_tag, prepared.id);
        let first_id = prepared.id.clone();
        let mut attempt: u32 = 0;
        loop {
            let exchange = client::exchange(
                &self.shared.endpoint,
                &prepared,
                intended,
                &self.control.in_flight,
            )
            .await;
            if let Some(records) = &self.shared.records {
                records.record(self.index, &prepared.id, &exchange, &self.shared.clock);
            }
            let limit = self.lock().on_finish(&exchange);
            let Outcome::Errored(failure) = &exchange.outcome else {
                return exchange;
            };
            if let Some(reason) = limit {
                let defaulted = self.constraints.max_errors.is_none()
                    && self.constraints.max_error_rate.is_none();
                if defaulted && !self.control.stopping() {
                    tracing::warn!(
                        "benchmark {}: the last {} finished requests all failed; stopping it (set constraints.max_errors or max_error_rate to choose)",
                        self.index + 1,
                        crate::aggregate::DEFAULT_FAILURE_STREAK
                    );
                }
                self.control.stop(reason, true);
                return exchange;
            }
            let retry = &self.shared.retry;
            let retryable = failure.status.is_some_and(|s| retry.on_status.contains(&s));
            if !retryable || attempt >= retry.max {
                return exchange;
            }
            let wait = failure
                .retry_after
                .unwrap_or(FIRST_RETRY_WAIT * 2u32.saturating_pow(attempt))
                .min(MAX_RETRY_WAIT);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.control.in_flight.cancelled() => return exchange,
            }
            if !self.claim() {
                return exchange;
            }
            intended = Instant::now();
            prepared.id = format!("{first_id}.retry{}", attempt + 1);
            attempt += 1;
        }
    }

    /// A closed-loop stream's next piece of work, sent when the last one ended: a request, or
    /// with sessions a whole session. False once the benchmark stops scheduling.
    async fn next_in_stream(&self) -> bool {
        match self.requests.sessions() {
            Some(sessions) => self.session(sessions, None).await,
            None => {
                if !self.claim() {
                    return false;
                }
                self.request(Instant::now(), None).await;
                true
            }
        }
    }

    /// An open-loop arrival, claimed, due at `intended`: a request, or a session's start.
    async fn arrival(&self, intended: Instant, prepared: Option<crate::client::Prepared>) {
        match self.requests.sessions() {
            Some(sessions) => {
                self.session(sessions, Some(intended)).await;
            }
            None => self.request(intended, prepared).await,
        }
    }

    /// One multi-turn session: its turns in order, each after the previous answer and a think
    /// time, each a request claimed like any other (so `max_requests` counts turns). A failed
    /// turn, or a stop before the last turn, leaves the session partial. `first` is the first
    /// turn's claimed arrival (open loop); without it the first turn is claimed here. False
    /// when the benchmark had stopped scheduling before the session began.
    async fn session(&self, sessions: &crate::session::Sessions, first: Option<Instant>) -> bool {
        let mut intended = match first {
            Some(at) => at,
            None if self.claim() => Instant::now(),
            None => return false,
        };
        let mut conversation = sessions.start();
        let mut began = None;
        let mut output_tokens = 0;
        let mut completed = None;
        while let Some(prepared) = conversation.next_turn(sessions) {
            let exchange = self.send(prepared, intended).await;
            began.get_or_insert(exchange.started);
            if !matches!(exchange.outcome, Outcome::Successful) {
                break;
            }
            output_tokens += crate::session::output_tokens(&exchange);
            if conversation.finished() {
                completed = Some(exchange.end);
                break;
            }
            conversation.answered(&exchange);
            // The next turn is due a think time after the answer ended.
            let due = Instant::now().max(exchange.end) + sessions.think();
            tokio::select! {
                () = self.shared.timer.sleep_until(due) => {}
                () = self.control.in_flight.cancelled() => break,
            }
            if !self.claim() {
                break;
            }
            intended = due;
        }
        let end = completed.unwrap_or_else(Instant::now);
        self.lock()
            .on_session_end(&crate::session_figures::SessionEnd {
                turns_sent: conversation.sent(),
                completed: completed.is_some(),
                duration_s: began.map_or(0.0, |b| (end - b).as_secs_f64()),
                output_tokens,
            });
        true
    }
}

pub(crate) async fn run(shared: &Arc<Shared>, plan: Plan) -> Ran {
    let start = Instant::now();
    let cpu_at_start = crate::cpu::client_cpu_seconds();
    // An end past what an `Instant` holds never comes.
    let planned_end = plan.constraints.max_seconds.and_then(|s| after(start, s));
    let mut aggregator = Aggregator::new(
        start,
        plan.warmup,
        plan.cooldown,
        &plan.constraints,
        plan.slo,
    );
    if plan.requests.sessions().is_some() {
        aggregator.enable_sessions();
    }
    let live = shared
        .live
        .as_ref()
        .map(|live| live.benchmark(crate::NAME, plan.index, &plan.strategy));
    if let Some(live) = &live {
        aggregator.feed_live(live.clone());
    }
    let state = Arc::new(Benchmarking {
        index: plan.index,
        requests: plan.requests.clone(),
        shared: shared.clone(),
        aggregator: Mutex::new(aggregator),
        control: Control {
            stopping: AtomicBool::new(false),
            in_flight: CancelToken::new(),
            reason: Mutex::new(None),
        },
        constraints: plan.constraints.clone(),
        sized: Mutex::new(Sized::default()),
    });
    // A level sized to the server is not known yet: the event carries no cap rather than the
    // ceiling the sizing may grow to.
    let mut started = plan.strategy.clone();
    if plan.sized {
        started.max_concurrency = None;
    }
    shared.progress.event(&ProgressEvent::BenchmarkStarted {
        index: plan.index,
        of: Some(plan.of),
        strategy: started,
        workload: plan.workload.clone(),
    });

    let load = generate(state.clone(), &plan);
    tokio::pin!(load);
    let mut ticker = Box::pin(progress(
        state.clone(),
        plan.index,
        start,
        planned_end,
        live.clone(),
    ));
    let deadline = async {
        match planned_end {
            Some(end) => tokio::time::sleep_until(end.into()).await,
            None => std::future::pending().await,
        }
    };
    let finished = tokio::select! {
        () = &mut load => true,
        () = deadline => {
            state.control.stop(StopReason::MaxSeconds, true);
            false
        }
        () = shared.run_cancel.cancelled() => {
            // Stop scheduling; what is in flight gets the grace to finish.
            state.control.stop(StopReason::Interrupted, false);
            false
        }
        () = &mut ticker => false,
    };
    drop(ticker);
    // Completions after this are the requests a stop let finish, not the plateau's pace.
    let stopped_at = (!finished).then(Instant::now);
    // Whatever stopped it, the requests still out finish or are cancelled; then count them.
    if !finished {
        if shared.run_cancel.is_cancelled() {
            let grace = tokio::time::sleep(plan.constraints.interrupt_grace());
            tokio::select! {
                () = &mut load => {}
                () = grace => {
                    state.control.in_flight.cancel();
                    load.await;
                }
            }
        } else {
            load.await;
        }
    }
    let end = Instant::now();
    // Every request has finished: the live figures are the report's.
    if let Some(live) = &live {
        live.finish();
    }
    let stopped_by = *state
        .control
        .reason
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let state = Arc::try_unwrap(state).unwrap_or_else(|_| unreachable!("every task has ended"));
    let aggregator = state
        .aggregator
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    let sized = state.sized.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut strategy = plan.strategy.clone();
    let mut steady_rate = aggregator.steady_rate();
    let mut still_rising = None;
    if plan.sized {
        // The level it held (or reached when time ran out), and the rate over its plateau.
        strategy.max_concurrency = Some(
            sized
                .chosen
                .or(sized.levels.0.last().map(|(s, _)| *s))
                .unwrap_or(1),
        );
        let plateau_rate = sized.plateau.and_then(|(since, before)| {
            let seconds = (stopped_at.unwrap_or(end) - since).as_secs_f64();
            let done = aggregator.live().successful.saturating_sub(before);
            (seconds >= 0.5 && done >= 2).then(|| done as f64 / seconds)
        });
        let best_level = sized.levels.0.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        steady_rate = plateau_rate.or((best_level > 0.0).then_some(best_level));
        let cap = plan.strategy.max_concurrency.unwrap_or(1);
        let rising = sized.chosen.is_none()
            && stopped_by != Some(StopReason::Interrupted)
            && matches!(sized.levels.decide(cap), crate::sizing::Decision::Grow(_));
        tracing::info!(
            "benchmark {}: throughput {} {} streams (completed requests per second by streams: {}){}",
            plan.index + 1,
            if rising { "still rising at" } else { "sized at" },
            strategy.max_concurrency.unwrap_or(1),
            sized.levels.describe(),
            match (steady_rate, rising) {
                (Some(r), false) => format!("; {r:.2} req/s over the plateau"),
                _ => String::new(),
            }
        );
        if rising {
            still_rising = Some(Warning {
                code: "throughput_still_rising".to_owned(),
                message: format!(
                    "the throughput benchmark's completions still rose when it ended (completed requests per second by streams: {}), so the server may carry more than its level of {} streams; a sweep's rate steps then stop below the server's capacity; give it more time (each level is measured for at least 1 s and a request per stream, at most a quarter of constraints.max_seconds) or set profile.max_concurrency",
                    sized.levels.describe(),
                    strategy.max_concurrency.unwrap_or(1)
                ),
            });
        }
    }
    let slo_counts = aggregator.slo_counts();
    let live = aggregator.live();
    let client_tokens = bench_scrape::ClientTokens {
        output: live.output_tokens,
        prompt: live.prompt_tokens,
    };
    let mut benchmark = aggregator.finish(
        plan.index,
        strategy,
        &plan.workload,
        end,
        stopped_by,
        &shared.clock,
        &shared.transport,
        &shared.connections.take(),
        shared.endpoint.wire.is_some(),
    );
    if let (Some(before), Some(after)) = (cpu_at_start, crate::cpu::client_cpu_seconds()) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let busy = (after - before) / (end - start).as_secs_f64().max(1e-9) / cores;
        if busy > CPU_SATURATED {
            benchmark.warnings.push(bench_core::schema::Warning {
                code: "client_cpu_saturated".to_owned(),
                message: format!(
                    "the client used {:.0} % of the {cores} cores while it ran; its timings may include its own queueing",
                    busy * 100.0
                ),
            });
        }
    }
    benchmark.warnings.extend(still_rising);
    // The caller adds the drain before it reports the benchmark finished.
    Ran {
        benchmark,
        steady_rate,
        slo_counts,
        client_tokens,
    }
}

/// Generates load until a constraint stops it; returns when every request has finished.
async fn generate(state: Arc<Benchmarking>, plan: &Plan) {
    let s = &plan.strategy;
    let mut tasks = JoinSet::new();
    match s.kind {
        StrategyKind::Throughput if plan.sized => {
            sized_streams(&state, plan, &mut tasks).await;
        }
        StrategyKind::Synchronous | StrategyKind::Concurrent | StrategyKind::Throughput => {
            let streams = s.streams.or(s.max_concurrency).unwrap_or(1).max(1);
            for i in 0..streams {
                let state = state.clone();
                let delay = duration_from_secs(plan.rampup_s * f64::from(i) / f64::from(streams));
                tasks.spawn(async move {
                    if !delay.is_zero() {
                        // A stream due past what an `Instant` holds never starts.
                        let Some(at) = Instant::now().checked_add(delay) else {
                            return;
                        };
                        tokio::select! {
                            () = state.shared.timer.sleep_until(at) => {}
                            () = state.control.in_flight.cancelled() => return,
                        }
                    }
                    // Closed loop: the next request goes out when the last one ends; its
                    // intended send is that moment.
                    while state.next_in_stream().await {}
                });
            }
        }
        StrategyKind::Constant
        | StrategyKind::Poisson
        | StrategyKind::Gamma
        | StrategyKind::Replay => {
            let rate = s.target_rate_per_s.unwrap_or(1.0);
            let process = match (s.kind, s.burstiness) {
                (StrategyKind::Poisson, _) => Process::Poisson,
                (StrategyKind::Gamma, Some(burstiness)) => Process::Gamma { burstiness },
                // Validation gives every gamma profile its burstiness; 1 is Poisson.
                (StrategyKind::Gamma, None) => Process::Poisson,
                _ => Process::Even,
            };
            let trace = plan.requests.offsets();
            // A trace's requests go out in its order, so each is taken before its task starts.
            let in_order = trace.is_some();
            let mut arrivals = match trace {
                Some(offsets) => Schedule::Trace { offsets, next: 0 },
                None => Schedule::Rate(Box::new(Arrivals::new(
                    rate,
                    process,
                    plan.rampup_s,
                    plan.seed,
                ))),
            };
            let limit = s
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(n as usize)));
            let mut pacer = bench_timer::Pacer::new(state.shared.timer.clone(), PACER_MAX_SPIN);
            let origin = Instant::now();
            // An arrival past what an `Instant` holds (a rate of 0) never comes.
            while let Some(intended) =
                after(origin, plan.first_arrival_s + arrivals.next_offset_s())
            {
                // A late arrival goes out at once: the schedule is never thinned. Every arrival
                // due at a wake goes out on it, without another sleep.
                tokio::select! {
                    () = pacer.until(intended) => {}
                    () = state.control.in_flight.cancelled() => break,
                }
                // An arrival that finds every permit taken waits for one; those waits tell a
                // saturated server (`concurrency_capped`) from a slow client.
                let (permit, capped_wait) = match &limit {
                    None => (None, None),
                    Some(semaphore) => match semaphore.clone().try_acquire_owned() {
                        Ok(permit) => (Some(permit), None),
                        Err(TryAcquireError::Closed) => (None, None),
                        Err(TryAcquireError::NoPermits) => {
                            let waiting = Instant::now();
                            tokio::select! {
                                permit = semaphore.clone().acquire_owned() => {
                                    (permit.ok(), Some(waiting.elapsed()))
                                }
                                () = state.control.in_flight.cancelled() => break,
                            }
                        }
                    },
                };
                if !state.claim_arrival(Some((intended, capped_wait))) {
                    break;
                }
                let prepared = in_order.then(|| state.requests.next());
                let state = state.clone();
                tasks.spawn(async move {
                    state.arrival(intended, prepared).await;
                    drop(permit);
                });
                // Reap finished requests so the set stays small.
                while tasks.try_join_next().is_some() {}
            }
            if arrivals.spent() {
                // Every request of the trace went out (a stop before that has its own reason).
                state.control.stop(StopReason::DataExhausted, false);
            }
            tracing::debug!(
                "benchmark {}: the pacer's timer woke about {} µs late (each wake counted up to {} µs)",
                plan.index + 1,
                pacer.expected_lateness().as_micros(),
                PACER_MAX_SPIN.as_micros()
            );
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Closed-loop streams whose number grows to the server's level (`sizing`): one at first,
/// doubled after each measured level while completions still rise, then held at the
/// smallest best level (the streams beyond it end after their request).
async fn sized_streams(state: &Arc<Benchmarking>, plan: &Plan, tasks: &mut JoinSet<()>) {
    use std::sync::atomic::AtomicU32;
    let cap = plan.strategy.max_concurrency.unwrap_or(1).max(1);
    let wanted = Arc::new(AtomicU32::new(0));
    let longest = crate::sizing::max_interval(plan.constraints.max_seconds);
    let mut open = 0u32;
    let mut decision = crate::sizing::Decision::Grow(1);
    loop {
        let target = match decision {
            crate::sizing::Decision::Grow(n) | crate::sizing::Decision::Hold(n) => n,
        };
        wanted.store(target, Ordering::SeqCst);
        for i in open..target {
            let (state, wanted) = (state.clone(), wanted.clone());
            tasks.spawn(async move {
                // A stream beyond the level held ends after its request.
                while i < wanted.load(Ordering::SeqCst) && state.next_in_stream().await {}
            });
        }
        open = open.max(target);
        if let crate::sizing::Decision::Hold(held) = decision {
            let mut sized = state.sized.lock().unwrap_or_else(|p| p.into_inner());
            sized.chosen = Some(held);
            sized.plateau = Some((Instant::now(), state.lock().live().successful));
            return;
        }
        // Measure this level: at least a second and a completion per stream, at most
        // `longest`; a stop ends the sizing where it is.
        let (since, before) = (Instant::now(), state.lock().live().successful);
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = state.control.in_flight.cancelled() => return,
            }
            if state.control.stopping() {
                return;
            }
            let elapsed = since.elapsed();
            let done = state.lock().live().successful - before;
            if (elapsed >= crate::sizing::MIN_INTERVAL && done >= u64::from(target))
                || elapsed >= longest
            {
                let rate = done as f64 / elapsed.as_secs_f64();
                let mut sized = state.sized.lock().unwrap_or_else(|p| p.into_inner());
                sized.levels.0.push((target, rate));
                decision = sized.levels.decide(cap);
                break;
            }
        }
    }
}

/// Sends a progress update every second until the benchmark ends (never completes itself),
/// and sets the live gauges (in flight, achieved rate) from the same counts.
async fn progress(
    state: Arc<Benchmarking>,
    index: usize,
    start: Instant,
    planned_end: Option<Instant>,
    live: Option<Arc<bench_core::live::LiveBenchmark>>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    interval.tick().await;
    let mut previous = (Instant::now(), 0u64, 0u64);
    loop {
        interval.tick().await;
        let now = Instant::now();
        let (counts, phase, (ttft, itl), saturated) = {
            let mut aggregator = state.lock();
            let saturated = aggregator.check_saturation(now);
            (
                aggregator.live(),
                aggregator.phase(now),
                aggregator.live_medians(),
                saturated,
            )
        };
        if let Some(finding) = saturated {
            let enforce = state
                .constraints
                .saturation()
                .is_some_and(|o| o.mode == SaturationMode::Enforce);
            tracing::warn!(
                "benchmark {}: {finding}{}",
                index + 1,
                if enforce { "; stopping it" } else { "" }
            );
            if enforce {
                state.control.stop(StopReason::OverSaturation, true);
            }
        }
        let seconds = (now - previous.0).as_secs_f64();
        let finished = counts.successful + counts.errored + counts.incomplete;
        let requests_per_s = (finished - previous.1) as f64 / seconds;
        if let Some(live) = &live {
            live.set_in_flight(counts.in_flight);
            live.set_achieved_rate(requests_per_s);
        }
        state
            .shared
            .progress
            .event(&ProgressEvent::Update(ProgressUpdate {
                index,
                phase,
                elapsed_s: (now - start).as_secs_f64(),
                remaining_s: planned_end
                    .map(|end| end.saturating_duration_since(now).as_secs_f64()),
                requests: bench_core::schema::RequestTotals::new(
                    counts.successful,
                    counts.incomplete,
                    counts.errored,
                ),
                in_flight: counts.in_flight,
                requests_per_s,
                output_tokens_per_s: (counts.output_tokens - previous.2) as f64 / seconds,
                ttft_p50_ms: ttft,
                itl_p50_ms: itl,
            }));
        previous = (now, finished, counts.output_tokens);
    }
}
