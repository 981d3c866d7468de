//! Listening, routing, admission (the batch and its queue) and the handlers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use rand_distr::Distribution as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

use crate::config::{FaultKind, FaultSpec, MockConfig, Model};
use crate::openai::{self, Api, Envelope};
use crate::stream::{Abort, MockBody, StreamFault, StreamPlan, TimedBody, TokenStream};
use crate::tls::{Alpn, Tls};
use crate::tokens::Counter;
use crate::truth::{Clock, Counts, MockStats, RequestRecord, Truth};
use crate::written::{Outbox, Recording, Stamped};
use bench_timer::Timer;

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 64 << 20;

/// Everything the handlers share.
pub(crate) struct State {
    pub(crate) config: MockConfig,
    model: Model,
    pub(crate) timer: Timer,
    slots: Arc<Semaphore>,
    waiting: AtomicU64,
    requests: AtomicU64,
    probes: AtomicU64,
    http1_connections: AtomicU64,
    http2_connections: AtomicU64,
    tls_handshake_failures: AtomicU64,
    /// Set when the mock serves HTTPS.
    pub(crate) tls: Option<Tls>,
    fault_rng: Mutex<SmallRng>,
    counter: Counter,
    pub(crate) truth: Truth,
    pub(crate) clock: Clock,
}

impl State {
    pub(crate) fn new(config: MockConfig) -> Result<Self, crate::MockError> {
        let model = config.model()?;
        let counter = Counter::load(config.tokenizer.as_deref())?;
        let tls = Tls::load(&config)?;
        let truth = Truth::new(config.record_limit, config.log.as_deref())?;
        let timer = Timer::start().map_err(|e| crate::MockError::Io {
            what: "cannot start the precise timer".to_owned(),
            source: e,
        })?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(config.max_batch as usize)),
            fault_rng: Mutex::new(SmallRng::seed_from_u64(config.seed ^ 0x00FA_u64)),
            model,
            timer,
            waiting: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            http1_connections: AtomicU64::new(0),
            http2_connections: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            tls,
            counter,
            truth,
            clock: Clock::new(),
            config,
        })
    }

    fn active(&self) -> u64 {
        (self.config.max_batch as usize - self.slots.available_permits()) as u64
    }

    pub(crate) fn stats(&self) -> MockStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        self.truth.stats(Counts {
            requests: load(&self.requests),
            probes: load(&self.probes),
            active: self.active(),
            queued: load(&self.waiting),
            http1_connections: load(&self.http1_connections),
            http2_connections: load(&self.http2_connections),
            tls_handshake_failures: load(&self.tls_handshake_failures),
        })
    }

    /// The next inter-token gap: a draw of the ITL, scaled by how full the batch is now.
    pub(crate) fn next_gap_ms(&self, rng: &mut SmallRng) -> f64 {
        let load = self.active() as f64 / f64::from(self.config.max_batch);
        self.model.itl.sample(rng) * (1.0 + self.config.slowdown * load)
    }

    /// The first fault whose schedule or probability fires for request `index` (0-based).
    fn fault_for(&self, index: u64) -> Option<&FaultSpec> {
        if self.config.faults.is_empty() {
            return None;
        }
        let mut rng = self.fault_rng.lock().unwrap_or_else(|p| p.into_inner());
        self.config.faults.iter().find(|f| {
            let scheduled = f.every.is_some_and(|n| (index + 1).is_multiple_of(n));
            // Draw for every probabilistic fault, so one fault's draws do not shift another's.
            let drawn = f.probability.is_some_and(|p| rng.random::<f64>() < p);
            scheduled || drawn
        })
    }
}

/// Accepts connections until `stop` is notified. Each connection is served in a task of its
/// own, TLS handshake included, so a slow client never holds up the others.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, stop: Arc<Notify>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.notified() => break,
        };
        let (stream, _) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!("mock server: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Tokens are tiny writes that must leave at once.
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(stream, state.clone()));
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// The protocols a connection may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocols {
    /// HTTP/1.1, or HTTP/2 when the client opens with its preface.
    Either,
    Http1,
    Http2,
}

/// Serves one connection: the TLS handshake (a failed one is counted), then HTTP/1.1 or
/// HTTP/2 as the client chose by ALPN (or by its preface, without ALPN). The socket is
/// wrapped below TLS, so a token counts as written when the kernel has taken its bytes.
async fn connection(stream: TcpStream, state: Arc<State>) {
    let unless_chosen = if state.config.http2 {
        Protocols::Either
    } else {
        Protocols::Http1
    };
    let outbox = Arc::new(Outbox::default());
    let stream = Stamped::new(stream, outbox.clone());
    let Some(tls) = &state.tls else {
        return http(TokioIo::new(stream), unless_chosen, state, outbox).await;
    };
    match tls.handshake(stream).await {
        Ok((stream, alpn)) => {
            let protocols = match alpn {
                Alpn::H2 => Protocols::Http2,
                Alpn::Http1 => Protocols::Http1,
                Alpn::None => unless_chosen,
            };
            http(TokioIo::new(stream), protocols, state, outbox).await;
        }
        Err(error) => {
            state.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("mock server: TLS handshake failed: {error}");
        }
    }
}

/// Serves HTTP on an established connection until it closes.
async fn http<I>(io: TokioIo<I>, protocols: Protocols, state: Arc<State>, outbox: Arc<Outbox>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        // The mock's load model (`max_batch`, `max_queue`) decides how many requests run, not
        // a transport limit that a client would wait on without the mock seeing it.
        .max_concurrent_streams(None)
        // Injected faults reset streams; any number of them must not end the connection.
        .max_local_error_reset_streams(None);
    let builder = match protocols {
        Protocols::Either => builder,
        Protocols::Http1 => builder.http1_only(),
        Protocols::Http2 => builder.http2_only(),
    };
    // Counted at its first request, by the protocol that request came in.
    let counted = AtomicBool::new(false);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let http2 = request.version() == hyper::Version::HTTP_2;
        if !counted.swap(true, Ordering::Relaxed) {
            let counter = if http2 {
                &state.http2_connections
            } else {
                &state.http1_connections
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        // An HTTP/2 connection's writes mix its streams: its tokens are stamped when handed over.
        let outbox = (!http2).then(|| outbox.clone());
        handle(state.clone(), request, outbox)
    });
    let _ = builder.serve_connection(io, service).await;
}

type Reply = Result<Response<MockBody>, Abort>;

fn json_response(status: StatusCode, body: String) -> Response<MockBody> {
    let mut response = Response::new(MockBody::text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
) -> Response<MockBody> {
    json_response(
        status,
        openai::error_body(message, kind, param, status.as_u16()),
    )
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
    outbox: Option<Arc<Outbox>>,
) -> Reply {
    let arrival = Instant::now();
    let api = match (request.method(), request.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => Api::Chat,
        (&Method::POST, "/v1/completions") => Api::Completions,
        (&Method::GET, "/health") => {
            return Ok(json_response(
                StatusCode::OK,
                "{\"status\":\"ok\"}".to_owned(),
            ))
        }
        (&Method::GET, "/v1/models") => {
            return Ok(json_response(StatusCode::OK, models_body(&state)))
        }
        (&Method::GET, "/mock/ground-truth") => return Ok(ground_truth_response(&state)),
        (&Method::GET, "/metrics") if state.config.metrics => return Ok(metrics_response(&state)),
        (&Method::GET, "/mock/stats") => {
            let stats = serde_json::to_string(&state.stats()).unwrap_or_default();
            return Ok(json_response(StatusCode::OK, stats));
        }
        (_, "/v1/chat/completions" | "/v1/completions" | "/health" | "/v1/models") => {
            return Ok(error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                "invalid_request_error",
                None,
            ))
        }
        (_, path) => {
            let message = format!("no route {path}; routes: /health, /v1/models, /v1/chat/completions, /v1/completions, /metrics, /mock/ground-truth, /mock/stats");
            return Ok(error_response(
                StatusCode::NOT_FOUND,
                &message,
                "invalid_request_error",
                None,
            ));
        }
    };
    if request.headers().contains_key(PROBE_HEADER) {
        state.probes.fetch_add(1, Ordering::Relaxed);
        // Read the body, or the connection could not be kept for the next request.
        let _ = Limited::read(request.into_body()).await;
        return Ok(probe_response(api));
    }
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let index = state.requests.fetch_add(1, Ordering::Relaxed);
    let id = match api {
        Api::Chat => format!("chatcmpl-{index}"),
        Api::Completions => format!("cmpl-{index}"),
    };
    let mut record = RequestRecord {
        id: id.clone(),
        request_id: request_id.clone(),
        route: api.name().to_owned(),
        arrival_unix_us: state.clock.unix_us(arrival),
        ..RequestRecord::empty()
    };
    let mut reply = respond(
        &state,
        Exchange {
            api,
            request,
            arrival,
            index,
            outbox,
        },
        &id,
        &mut record,
    )
    .await;
    if let Ok(response) = &mut reply {
        record.status = response.status().as_u16();
        if let Some(value) = request_id.and_then(|r| HeaderValue::from_str(&r).ok()) {
            response.headers_mut().insert("x-request-id", value);
        }
    }
    // A body with tokens pushes its own record once they are written.
    let owned = matches!(&reply, Ok(r) if r.body().owns_record());
    if !owned {
        state.truth.push(record);
    }
    reply
}

/// A request to answer, as it came on its connection.
struct Exchange {
    api: Api,
    request: Request<Incoming>,
    arrival: Instant,
    /// Its arrival index.
    index: u64,
    /// Where its tokens wait for their write (HTTP/1.1).
    outbox: Option<Arc<Outbox>>,
}

/// The header llm-bench's native engine puts on its connection probe.
const PROBE_HEADER: &str = "x-llm-bench-probe";

/// A one-token stream for a connection probe: it only has to succeed and keep the connection.
fn probe_response(api: Api) -> Response<MockBody> {
    let chunk = match api {
        Api::Chat => {
            r#"{"id":"probe","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"length"}]}"#
        }
        Api::Completions => {
            r#"{"id":"probe","object":"text_completion","choices":[{"index":0,"text":"ok","finish_reason":"length"}]}"#
        }
    };
    let mut response = Response::new(MockBody::text(format!("data: {chunk}\n\ndata: [DONE]\n\n")));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
}

async fn respond(
    state: &Arc<State>,
    exchange: Exchange,
    id: &str,
    record: &mut RequestRecord,
) -> Reply {
    let Exchange {
        api,
        request,
        arrival,
        index,
        outbox,
    } = exchange;
    let body = match Limited::read(request.into_body()).await {
        Ok(body) => body,
        Err(message) => {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                &message,
                "invalid_request_error",
                None,
            ))
        }
    };
    let mut parsed = match openai::parse(api, &body) {
        Ok(parsed) => parsed,
        Err(bad) => {
            return Ok(error_response(
                StatusCode::BAD_REQUEST,
                &bad.message,
                "invalid_request_error",
                bad.param,
            ))
        }
    };
    record.stream = parsed.stream;
    record.prompt_tokens = state.counter.count(&parsed.prompt);
    record.messages = parsed.messages.take();

    let fault = state.fault_for(index).cloned();
    record.fault = fault.as_ref().map(|f| f.kind.name().to_owned());
    if let Some(f) = &fault {
        let retry_after = |mut r: Response<MockBody>| {
            if let Ok(v) = HeaderValue::from_str(&format!("{}", f.seconds.ceil() as u64)) {
                r.headers_mut().insert("retry-after", v);
            }
            r
        };
        match f.kind {
            FaultKind::Http429 => {
                return Ok(retry_after(error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "injected rate limit",
                    "rate_limit_error",
                    None,
                )))
            }
            FaultKind::Http503 => {
                return Ok(retry_after(error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "injected unavailability",
                    "server_error",
                    None,
                )))
            }
            FaultKind::Http500 => {
                return Ok(error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "injected server error",
                    "server_error",
                    None,
                ))
            }
            FaultKind::ResetBeforeHeaders => return Err(Abort),
            _ => {}
        }
    }

    // Admission: a batch slot, first come first served, or a refusal when the queue is full.
    if let Some(max) = state.config.max_queue {
        if state.slots.available_permits() == 0
            && state.waiting.load(Ordering::Relaxed) >= u64::from(max)
        {
            let status = StatusCode::from_u16(state.config.queue_full_status)
                .unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            return Ok(error_response(
                status,
                "the server's queue is full",
                "server_busy",
                None,
            ));
        }
    }
    let mut rng =
        SmallRng::seed_from_u64(state.config.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let planned = output_length(state, &parsed, &mut rng);
    record.output_tokens_planned = planned.0;
    if api == openai::Api::Chat {
        record.reasoning_tokens_planned = state.config.reasoning_tokens.min(planned.0);
    }
    let prefill_ms = state.model.ttft.sample(&mut rng)
        + state.model.prefill_per_token.sample(&mut rng) * f64::from(record.prompt_tokens);
    let prefill = Duration::from_secs_f64(prefill_ms / 1000.0);
    let queued = Queued::new(state, prefill);
    let slot = state.slots.clone().acquire_owned().await;
    queued.admitted();
    let slot = slot.expect("the semaphore is never closed");
    let admitted = Instant::now();
    record.admitted_unix_us = Some(state.clock.unix_us(admitted));
    state.truth.served.admitted(record.prompt_tokens);
    let first_token = admitted + prefill;
    let model = parsed
        .model
        .clone()
        .unwrap_or_else(|| state.config.model.clone());
    let envelope = Envelope::new(api, id, &model, state.clock.unix_s(arrival));
    let stream_fault = fault
        .filter(|f| {
            !matches!(
                f.kind,
                FaultKind::Http429
                    | FaultKind::Http500
                    | FaultKind::Http503
                    | FaultKind::ResetBeforeHeaders
            )
        })
        .map(|f| StreamFault {
            kind: f.kind,
            after_tokens: f.after_tokens.min(planned.0.saturating_sub(1)),
            seconds: f.seconds,
        });

    if parsed.stream {
        record.status = StatusCode::OK.as_u16();
        let stream = TokenStream::new(
            state.clone(),
            StreamPlan {
                envelope,
                first_token,
                planned: planned.0,
                finish_reason: planned.1,
                include_usage: parsed.include_usage,
                fault: stream_fault,
                rng,
                record: std::mem::replace(record, RequestRecord::empty()),
                outbox,
                slot,
            },
        );
        let mut response = Response::new(MockBody::Stream(Box::new(stream)));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert("cache-control", HeaderValue::from_static("no-cache"));
        return Ok(response);
    }

    // Not streaming: the whole body goes out when the last token would have.
    let mut last = first_token;
    for _ in 1..planned.0 {
        last += Duration::from_secs_f64(state.next_gap_ms(&mut rng) / 1000.0);
    }
    if let Some(f) = stream_fault.filter(|f| f.kind == FaultKind::Stall) {
        last += Duration::from_secs_f64(f.seconds);
    }
    state.timer.sleep_until(last).await;
    drop(slot);
    // A fault's body carries no tokens: the time it was due stands for when it was written.
    let mut handed_over = || {
        let now = Instant::now();
        state.truth.tokens_written(u64::from(planned.0), now - last);
        let at = state.clock.unix_us(now);
        record.first_token_unix_us = Some(at);
        record.last_token_unix_us = Some(at);
        if planned.0 > record.reasoning_tokens_planned {
            record.first_answer_token_unix_us = Some(at);
        }
    };
    match stream_fault.map(|f| f.kind) {
        Some(FaultKind::CloseMidStream) => {
            handed_over();
            return Err(Abort);
        }
        Some(FaultKind::ErrorInStream) => {
            handed_over();
            return Ok(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected error in stream",
                "server_error",
                None,
            ));
        }
        Some(FaultKind::MalformedChunk) => {
            handed_over();
            record.completed = true;
            return Ok(json_response(
                StatusCode::OK,
                openai::MALFORMED.trim_start_matches("data: ").to_owned(),
            ));
        }
        _ => {}
    }
    let reasoning = record.reasoning_tokens_planned;
    let text = |tokens: std::ops::Range<u32>| tokens.map(openai::token_text).collect::<String>();
    let body = envelope.full_response(
        &text(0..reasoning),
        &text(reasoning..planned.0),
        planned.1,
        record.prompt_tokens,
        planned.0,
    );
    record.tokens_sent = planned.0;
    record.completed = true;
    record.status = StatusCode::OK.as_u16();
    let recording = Recording::new(
        state.clone(),
        std::mem::replace(record, RequestRecord::empty()),
    );
    let mut response = json_response(StatusCode::OK, String::new());
    *response.body_mut() = MockBody::Timed(Some(Box::new(TimedBody {
        bytes: bytes::Bytes::from(body),
        recording,
        outbox,
        tokens: planned.0,
        deadline: last,
    })));
    Ok(response)
}

/// Tokens to send and the finish reason: `max_tokens` when the client sets `ignore_eos`,
/// else the shorter of `max_tokens` and the mock's natural length.
fn output_length(
    state: &State,
    parsed: &openai::Parsed,
    rng: &mut SmallRng,
) -> (u32, &'static str) {
    let natural = match &state.model.output_tokens {
        Some(normal) => normal.sample(rng).round().max(1.0) as u32,
        None => state.config.output_tokens,
    };
    match parsed.max_tokens {
        Some(max) if parsed.ignore_eos || max <= natural => (max, "length"),
        _ => (natural, "stop"),
    }
}

/// Counts a request waiting for admission while it lives.
struct Waiting(Arc<State>);

impl Waiting {
    fn new(state: &Arc<State>) -> Self {
        state.waiting.fetch_add(1, Ordering::Relaxed);
        Self(state.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request waiting for admission. When its client goes away meanwhile (hyper drops the
/// handler), it still waits for a batch slot and holds it for its prefill, as a server that
/// notices a closed connection only at its first write (llama.cpp) does.
struct Queued {
    waiting: Option<Waiting>,
    prefill: Duration,
}

impl Queued {
    fn new(state: &Arc<State>, prefill: Duration) -> Self {
        Self {
            waiting: Some(Waiting::new(state)),
            prefill,
        }
    }

    fn admitted(mut self) {
        self.waiting = None;
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        let Some(waiting) = self.waiting.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let prefill = self.prefill;
        runtime.spawn(async move {
            let state = waiting.0.clone();
            let slot = state.slots.clone().acquire_owned().await;
            drop(waiting);
            if let Ok(_slot) = slot {
                tokio::time::sleep(prefill).await;
            }
        });
    }
}

/// `GET /metrics` in vLLM's names (`served.rs`): the requests in the batch and waiting for it,
/// token counters and request-time histograms, for clients that wait for an idle server or
/// scrape it.
fn metrics_response(state: &State) -> Response<MockBody> {
    let now = crate::served::Now {
        running: state.active(),
        waiting: state.waiting.load(Ordering::Relaxed),
        max_batch: state.config.max_batch,
        generated_tokens: state.truth.tokens_written_total(),
    };
    let text = state.truth.served.text(&state.config.model, &now);
    let mut response = Response::new(MockBody::text(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

fn models_body(state: &State) -> String {
    let created = state.clock.unix_s(Instant::now());
    let data: Vec<serde_json::Value> = std::iter::once(&state.config.model)
        .chain(&state.config.extra_models)
        .map(|id| {
            serde_json::json!({
                "id": id,
                "object": "model",
                "created": created,
                "owned_by": "bench-mock",
            })
        })
        .collect();
    serde_json::json!({"object": "list", "data": data}).to_string()
}

fn ground_truth_response(state: &State) -> Response<MockBody> {
    let mut lines = String::new();
    for record in state.truth.records() {
        if let Ok(line) = serde_json::to_string(&record) {
            lines.push_str(&line);
            lines.push('\n');
        }
    }
    let mut response = Response::new(MockBody::text(lines));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// Reads a request body up to [`MAX_BODY_BYTES`].
struct Limited;

impl Limited {
    async fn read(body: Incoming) -> Result<bytes::Bytes, String> {
        let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
        match limited.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) => Err(format!("cannot read the request body: {error}")),
        }
    }
}

/// Binds the listener; the address must be loopback or an explicit interface.
pub(crate) async fn bind(
    host: &str,
    port: u16,
) -> Result<(TcpListener, SocketAddr), crate::MockError> {
    let listener = TcpListener::bind((host, port))
        .await
        .map_err(|e| crate::MockError::Io {
            what: format!("cannot listen on {host}:{port}"),
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| crate::MockError::Io {
        what: "cannot read the listening address".to_owned(),
        source: e,
    })?;
    Ok((listener, addr))
}

#[cfg(test)]
mod tests {
    use crate::testing::{chat, eventually, h2c_client, http1_client, post, Clients as _, Pki};
    use crate::{MockConfig, MockServer};

    fn config() -> MockConfig {
        MockConfig {
            ttft_ms: 5.0,
            itl_ms: 2.0,
            output_tokens: 6,
            ..MockConfig::default()
        }
    }

    fn with_fault(spec: &str, config: MockConfig) -> MockConfig {
        MockConfig {
            faults: vec![crate::FaultSpec::parse(spec).unwrap()],
            ..config
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_token_time_is_recorded_only_when_asked() {
        for (token_times, client) in [
            (false, http1_client()),
            (true, http1_client()),
            (true, h2c_client()),
        ] {
            let server = MockServer::start(MockConfig {
                token_times,
                ..config()
            })
            .await
            .unwrap();
            let reply = post(&client, &server, "/v1/chat/completions", &chat(), None)
                .await
                .unwrap();
            assert!(reply.body.ends_with("data: [DONE]\n\n"), "{}", reply.body);
            let t = server.ground_truth().remove(0);
            assert_eq!((t.tokens_sent, t.completed), (6, true));
            let line = serde_json::to_value(&t).unwrap();
            if !token_times {
                assert_eq!(t.token_times_unix_us, None);
                assert!(line.get("token_times_unix_us").is_none(), "{line}");
                continue;
            }
            let times = t.token_times_unix_us.clone().unwrap();
            assert_eq!(times.len(), 6, "{:?} {t:?}", reply.version);
            assert_eq!(times.first().copied(), t.first_token_unix_us);
            assert_eq!(times.last().copied(), t.last_token_unix_us);
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
            // Never before its deadline: 5 ms after admission, then every 2 ms.
            let admitted = t.admitted_unix_us.unwrap();
            for (k, at) in (0..).zip(&times) {
                assert!(at - admitted >= 5_000 + 2_000 * k, "token {k}: {t:?}");
            }
            assert_eq!(line["token_times_unix_us"].as_array().unwrap().len(), 6);
        }
        // A non-streamed body writes its tokens at once, and lists no times.
        let server = MockServer::start(MockConfig {
            token_times: true,
            ..config()
        })
        .await
        .unwrap();
        let body = serde_json::json!({"prompt": "hi", "max_tokens": 3});
        let reply = post(&http1_client(), &server, "/v1/completions", &body, None)
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let t = server.ground_truth().remove(0);
        assert_eq!((t.tokens_sent, t.completed, t.status), (3, true, 200));
        assert!(t.first_token_unix_us.is_some() && t.first_token_unix_us == t.last_token_unix_us);
        assert_eq!(t.token_times_unix_us, None);
        assert_eq!(server.stats().token_lateness_us.count, 1);
    }

    /// `reasoning_tokens`: a chat response streams that many tokens in
    /// `delta.reasoning_content` before its answer, all counted in `completion_tokens`; the
    /// ground truth says when the answer started. Completions carry no reasoning.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reasoning_model_streams_its_reasoning_before_the_answer() {
        let server = MockServer::start(MockConfig {
            reasoning_tokens: 4,
            token_times: true,
            ..config()
        })
        .await
        .unwrap();
        let reply = post(
            &http1_client(),
            &server,
            "/v1/chat/completions",
            &chat(),
            None,
        )
        .await
        .unwrap();
        let events: Vec<serde_json::Value> = reply
            .body
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|e| *e != "[DONE]")
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let deltas: Vec<(bool, bool)> = events[1..7]
            .iter()
            .map(|e| {
                let delta = &e["choices"][0]["delta"];
                (
                    delta.get("reasoning_content").is_some(),
                    delta.get("content").is_some(),
                )
            })
            .collect();
        let reasoning = [(true, false); 4];
        let answer = [(false, true); 2];
        assert_eq!(
            deltas,
            [&reasoning[..], &answer[..]].concat(),
            "{}",
            reply.body
        );
        assert_eq!(events[7]["usage"]["completion_tokens"], 6);
        let t = server.ground_truth().remove(0);
        assert_eq!((t.reasoning_tokens_planned, t.tokens_sent), (4, 6));
        let times = t.token_times_unix_us.clone().unwrap();
        assert_eq!(t.first_answer_token_unix_us, Some(times[4]));
        assert!(times[4] > times[3]);

        // Not streamed: the message carries both, written at once.
        let body = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
        let reply = post(
            &http1_client(),
            &server,
            "/v1/chat/completions",
            &body,
            None,
        )
        .await
        .unwrap();
        let whole: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let message = &whole["choices"][0]["message"];
        assert_eq!(message["reasoning_content"], " the quick model streams");
        assert_eq!(message["content"], " one token");
        let t = server.ground_truth().remove(1);
        assert_eq!(t.first_answer_token_unix_us, t.first_token_unix_us);

        // Completions: no reasoning phase.
        let body = serde_json::json!({"prompt": "hi", "stream": true});
        let reply = post(&http1_client(), &server, "/v1/completions", &body, None)
            .await
            .unwrap();
        assert!(!reply.body.contains("reasoning"), "{}", reply.body);
        let t = server.ground_truth().remove(2);
        assert_eq!(t.reasoning_tokens_planned, 0);
        assert_eq!(t.first_answer_token_unix_us, t.first_token_unix_us);
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_h2_stream_reset_frees_the_slot_like_a_closed_connection() {
        let pki = Pki::new();
        let server = MockServer::start(pki.https(MockConfig {
            max_batch: 1,
            itl_ms: 10.0,
            output_tokens: 100,
            ..config()
        }))
        .await
        .unwrap();
        let client = pki.client(None);
        // Role chunk and 3 tokens, then the client drops the response: h2 resets the stream.
        let partial = post(&client, &server, "/v1/chat/completions", &chat(), Some(4))
            .await
            .unwrap();
        assert_eq!(partial.version, reqwest::Version::HTTP_2);
        assert!(eventually(|| server.stats().active == 0).await);
        let t = &server.ground_truth()[0];
        assert!(!t.completed && t.tokens_sent < 10, "{t:?}");
        // The batch slot is free and the connection still serves.
        let whole = post(
            &client,
            &server,
            "/v1/completions",
            &serde_json::json!({"prompt": "hi", "max_tokens": 2, "stream": true}),
            None,
        )
        .await
        .unwrap();
        assert!(whole.body.ends_with("data: [DONE]\n\n"));
        assert_eq!(server.stats().http2_connections, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_ends_h2_streams_that_run_in_tasks_of_their_own() {
        let pki = Pki::new();
        let server = MockServer::start(pki.https(MockConfig {
            itl_ms: 10.0,
            output_tokens: 1000,
            ..config()
        }))
        .await
        .unwrap();
        let state = server.state.clone();
        let client = pki.client(None);
        let mut response = client
            .post(format!("{}/v1/chat/completions", server.base_url()))
            .json(&chat())
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        response.chunk().await.unwrap();
        assert_eq!(state.active(), 1);
        server.shutdown().await;
        assert!(eventually(|| state.active() == 0).await);
        assert!(response.chunk().await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connection_faults_over_h2_reset_only_their_stream() {
        let pki = Pki::new();
        let server =
            MockServer::start(pki.https(with_fault("reset_before_headers:every=2", config())))
                .await
                .unwrap();
        let client = pki.client(None);
        let path = "/v1/chat/completions";
        assert!(post(&client, &server, path, &chat(), None).await.is_ok());
        assert!(post(&client, &server, path, &chat(), None).await.is_err());
        assert!(post(&client, &server, path, &chat(), None).await.is_ok());
        let statuses: Vec<u16> = server.ground_truth().iter().map(|t| t.status).collect();
        assert_eq!(statuses, [200, 0, 200]);
        assert_eq!(server.stats().http2_connections, 1);

        let server =
            MockServer::start(pki.https(with_fault("close_mid_stream:every=1,after=3", config())))
                .await
                .unwrap();
        let client = pki.client(None);
        let reply = post(&client, &server, path, &chat(), None).await.unwrap();
        assert!(reply.broken);
        assert_eq!(
            reply.body.matches("\n\n").count(),
            4,
            "role and 3 tokens, then the stream is reset"
        );
        assert!(eventually(|| server.ground_truth().len() == 1).await);
        let t = &server.ground_truth()[0];
        assert_eq!((t.tokens_sent, t.completed), (3, false));
        let health = client
            .get(format!("{}/health", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(server.stats().http2_connections, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_and_probes_over_h2() {
        let pki = Pki::new();
        let server = MockServer::start(pki.https(config())).await.unwrap();
        let client = pki.client(None);
        let metrics = client
            .get(format!("{}/metrics", server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.version(), reqwest::Version::HTTP_2);
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains("vllm:num_requests_running{model_name=\"mock-model\"} 0\n"),
            "{text}"
        );
        let probe = client
            .post(format!("{}/v1/chat/completions", server.base_url()))
            .header("x-llm-bench-probe", "1")
            .json(&chat())
            .send()
            .await
            .unwrap();
        assert!(probe.text().await.unwrap().ends_with("data: [DONE]\n\n"));
        let stats = server.stats();
        assert_eq!((stats.probes, stats.requests), (1, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plain_http_takes_prior_knowledge_h2c_only_with_http2_on() {
        let server = MockServer::start(config()).await.unwrap();
        let reply = post(
            &h2c_client(),
            &server,
            "/v1/chat/completions",
            &chat(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            (reply.version, reply.status),
            (reqwest::Version::HTTP_2, 200)
        );
        assert_eq!(server.stats().http2_connections, 1);

        let server = MockServer::start(MockConfig {
            http2: false,
            ..config()
        })
        .await
        .unwrap();
        assert!(post(
            &h2c_client(),
            &server,
            "/v1/chat/completions",
            &chat(),
            None
        )
        .await
        .is_err());
        assert_eq!(server.stats().http2_connections, 0);
    }
}
