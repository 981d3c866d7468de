//! One request: send it, read the response (streamed or not), and time every part of it.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use bench_core::CancelToken;
use bytes::Bytes;
use serde::Deserialize;

use crate::sse::SseParser;

/// What one request did, with its timestamps.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// When the schedule wanted it sent.
    pub(crate) intended: Instant,
    /// When the client started it (before any connection was opened for it).
    pub(crate) started: Instant,
    /// When the server could see all of it: the write of its last byte returned (own client),
    /// or its connection was ready (reqwest, which writes out of sight).
    pub(crate) sent: Instant,
    /// The first content-bearing chunk (or the whole body when not streaming): when it
    /// arrived, by the kernel's receive time where known ([`Exchange::timing`]).
    pub(crate) first_token: Option<Instant>,
    /// The last content-bearing chunk.
    pub(crate) last_token: Option<Instant>,
    /// The end of the response (or of the attempt).
    pub(crate) end: Instant,
    /// Gaps between consecutive content chunks, in ms.
    pub(crate) gaps_ms: Vec<f64>,
    /// Content-bearing chunks received.
    pub(crate) content_chunks: u32,
    /// Reasoning against answer within those chunks.
    pub(crate) phases: Phases,
    /// The server's `usage`, when it sent one.
    pub(crate) usage: Option<Usage>,
    /// The server's own timings, when it sent them (llama.cpp does, in its last chunk).
    pub(crate) server_timings: Option<ServerTimings>,
    /// Prompt tokens as the client counted them.
    pub(crate) client_prompt_tokens: u32,
    /// The HTTP version of the response, when one came.
    pub(crate) http_version: Option<&'static str>,
    /// When this request opened the connection its response came on: the time that took
    /// (TCP connect, a proxy's CONNECT, the TLS handshake), which TTFT leaves out.
    pub(crate) connection_setup: Option<Duration>,
    /// Where its receive times came from, and how late the client read them.
    pub(crate) timing: ReadTiming,
    pub(crate) outcome: Outcome,
    /// The turn's index (from 1) when the request is a turn of a multi-turn session.
    pub(crate) turn: Option<u32>,
    /// A session turn's answer text as received (the content, not reasoning), for the next
    /// turn's history; `None` outside sessions, so other requests keep no text.
    pub(crate) answer: Option<String>,
}

/// A response's reasoning phase (chunks whose delta carries only `reasoning_content` or
/// `reasoning`) against its answer (chunks with `content`, `text` or tool calls).
#[derive(Debug, Default)]
pub(crate) struct Phases {
    /// Chunks that carried only reasoning.
    pub(crate) reasoning_chunks: u32,
    /// The first answer chunk, timed as [`Exchange::first_token`].
    pub(crate) first_answer: Option<Instant>,
    /// Gaps between consecutive reasoning chunks, and between consecutive answer chunks, in
    /// ms; the gap from a reasoning chunk to an answer chunk (or back) is in neither.
    pub(crate) reasoning_gaps_ms: Vec<f64>,
    pub(crate) answer_gaps_ms: Vec<f64>,
    last_reasoning: Option<Instant>,
    last_answer: Option<Instant>,
    /// A non-streamed body whose message carried reasoning: its length is known only from
    /// the server's usage.
    pub(crate) unstreamed_reasoning: bool,
}

impl Phases {
    /// Notes one content chunk that arrived `at`.
    fn chunk(&mut self, phase: Phase, at: Instant) {
        let (last, gaps) = match phase {
            Phase::Reasoning => {
                self.reasoning_chunks += 1;
                (&mut self.last_reasoning, &mut self.reasoning_gaps_ms)
            }
            Phase::Answer => {
                self.first_answer.get_or_insert(at);
                (&mut self.last_answer, &mut self.answer_gaps_ms)
            }
        };
        if let Some(previous) = last.replace(at) {
            gaps.push((at - previous).as_secs_f64() * 1000.0);
        }
    }
}

/// Which part of a response a content chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Reasoning,
    Answer,
}

/// How the response's content was timed.
#[derive(Debug, Default)]
pub(crate) struct ReadTiming {
    /// Whether the reads were the client's own, stamped by the kernel.
    pub(crate) kernel: bool,
    /// Per read that completed content events: the read's time minus the kernel's receive
    /// time, in ms (the client's own delay).
    pub(crate) client_delays_ms: Vec<f64>,
    /// Content events that shared their read with another content event, so got one time.
    pub(crate) coalesced_events: u32,
    /// Reads of the response that came back without a kernel time (their read time used).
    pub(crate) unstamped_reads: u32,
}

/// The name of an HTTP version as the report writes it.
fn version_name(version: reqwest::Version) -> &'static str {
    match version {
        reqwest::Version::HTTP_09 => "HTTP/0.9",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        reqwest::Version::HTTP_11 => "HTTP/1.1",
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_3 => "HTTP/3",
        _ => "other",
    }
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Successful,
    /// Cancelled by the client (time limit, interruption).
    Incomplete,
    Errored(Failure),
}

/// Why a request failed: a stable kind, the HTTP status if any, a short message.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) kind: &'static str,
    pub(crate) status: Option<u16>,
    pub(crate) message: String,
    /// The server's `Retry-After`, in whole seconds, when it sent one.
    pub(crate) retry_after: Option<Duration>,
}

impl Failure {
    fn new(kind: &'static str, status: Option<u16>, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.len() > 300 {
            let mut cut = 300;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        Self {
            kind,
            status,
            message,
            retry_after: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: Option<u64>,
    pub(crate) completion_tokens: Option<u64>,
    /// OpenAI's `completion_tokens_details.reasoning_tokens` (vLLM leaves it out).
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// OpenAI's (and vLLM's) `prompt_tokens_details`: `cached_tokens`, the prompt tokens the
    /// server took from its prefix cache.
    #[serde(default)]
    pub(crate) prompt_tokens_details: Option<PromptTokensDetails>,
}

impl Usage {
    /// The reasoning tokens among the completion tokens, when the server said.
    pub(crate) fn reasoning_tokens(&self) -> Option<u64> {
        self.completion_tokens_details?.reasoning_tokens
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct PromptTokensDetails {
    pub(crate) cached_tokens: Option<u64>,
}

/// llama.cpp's `timings`: how long the server spent on the prompt and per generated token.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
pub(crate) struct ServerTimings {
    pub(crate) prompt_n: Option<u64>,
    pub(crate) prompt_ms: Option<f64>,
    pub(crate) predicted_n: Option<u64>,
    pub(crate) predicted_per_token_ms: Option<f64>,
    /// Prompt tokens taken from the slot's cache.
    #[serde(default)]
    pub(crate) cache_n: Option<u64>,
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) body: Bytes,
    pub(crate) prompt_tokens: u32,
    /// Unique in the run (`req-<n>`, `s<n>-t<k>`); the runner puts the run's tag before it
    /// and sends it as `x-request-id`, so server logs can be joined with ours.
    pub(crate) id: String,
    /// The turn's index (from 1) when it is a turn of a multi-turn session; the client then
    /// keeps the answer's text.
    pub(crate) turn: Option<u32>,
}

/// Everything constant across requests.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// reqwest's clients, pooled or not as the connection probe decided.
    pub(crate) clients: crate::connection::Clients,
    /// The own HTTP/1.1 client whose reads carry the kernel's receive time; `None` where
    /// reqwest carries the requests (TLS, a proxy, `timestamps = "user_space"`).
    pub(crate) wire: Option<crate::http1::Client>,
    pub(crate) url: String,
    pub(crate) stream: bool,
    pub(crate) request_timeout: Option<Duration>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    timings: Option<ServerTimings>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

fn filled(s: &Option<Cow<'_, str>>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl Delta<'_> {
    /// The phase of a delta with content: a delta that carries answer text or tool calls is
    /// the answer even when it carries reasoning too (the answer has begun).
    fn phase(&self) -> Option<Phase> {
        if filled(&self.content) || self.tool_calls.is_some() {
            Some(Phase::Answer)
        } else if filled(&self.reasoning_content) || filled(&self.reasoning) {
            Some(Phase::Reasoning)
        } else {
            None
        }
    }

    fn has_reasoning(&self) -> bool {
        filled(&self.reasoning_content) || filled(&self.reasoning)
    }
}

impl Choice<'_> {
    /// The phase of a choice with content, `None` for one without (role-only, usage-only).
    fn phase(&self) -> Option<Phase> {
        let text = filled(&self.text).then_some(Phase::Answer);
        let phase = |d: &Option<Delta<'_>>| d.as_ref().and_then(Delta::phase);
        // The answer wins over reasoning wherever either appears.
        [phase(&self.delta), phase(&self.message), text]
            .into_iter()
            .flatten()
            .min_by_key(|p| *p == Phase::Reasoning)
    }
}

/// Sends `request` and reads the response until it ends, fails, or `cancel` fires.
pub(crate) async fn exchange(
    endpoint: &Endpoint,
    request: &Prepared,
    intended: Instant,
    cancel: &CancelToken,
) -> Exchange {
    let started = Instant::now();
    let mut exchange = Exchange {
        intended,
        started,
        sent: started,
        first_token: None,
        last_token: None,
        end: started,
        gaps_ms: Vec::new(),
        content_chunks: 0,
        phases: Phases::default(),
        usage: None,
        server_timings: None,
        client_prompt_tokens: request.prompt_tokens,
        http_version: None,
        connection_setup: None,
        timing: ReadTiming::default(),
        outcome: Outcome::Successful,
        turn: request.turn,
        answer: request.turn.map(|_| String::new()),
    };
    let work = async {
        match &endpoint.wire {
            Some(wire) => read_wire(endpoint, wire, request, &mut exchange).await,
            None => {
                // Connections opened for this request report their set-up time to its slot.
                let slot = std::sync::Arc::new(crate::setup::Slot::default());
                slot.clone()
                    .scope(read(endpoint, request, &mut exchange, &slot))
                    .await
            }
        }
    };
    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => Outcome::Incomplete,
        outcome = timed(endpoint.request_timeout, work) => outcome,
    };
    exchange.end = Instant::now();
    exchange.outcome = outcome;
    exchange
}

async fn timed(
    limit: Option<Duration>,
    work: impl std::future::Future<Output = Outcome>,
) -> Outcome {
    match limit {
        None => work.await,
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Errored(Failure::new(
                "timeout",
                None,
                format!("no complete response within {} s", limit.as_secs_f64()),
            )),
        },
    }
}

/// The error kind of a request that failed because the client had no file descriptor left:
/// the client's failure, never the server's.
pub(crate) const FD_LIMIT: &str = "client_fd_limit";

/// `EMFILE` (this process) and `ENFILE` (the whole system): no file descriptor left.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// The OS error code when `error` or an error in its source chain is an `io::Error` for
/// `EMFILE` or `ENFILE`. An `io::Error` that wraps another error is looked into as well, since
/// its `source()` skips the wrapped error itself.
fn fd_exhaustion(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error().filter(|c| *c == EMFILE || *c == ENFILE) {
                return Some(code);
            }
            if let Some(code) = io.get_ref().and_then(|inner| fd_exhaustion(inner)) {
                return Some(code);
            }
        }
        next = current.source();
    }
    None
}

/// A request that failed for want of a file descriptor (`code` is `EMFILE` or `ENFILE`).
fn fd_failure(code: i32) -> Failure {
    let limit =
        crate::cpu::open_files_limit().map_or("unknown".to_owned(), |limit| limit.to_string());
    let (whose, fix) = if code == ENFILE {
        (
            "the system ran out of file descriptors",
            "raise the system-wide limit (`sysctl fs.file-max`) or close other programs",
        )
    } else {
        (
            "the client ran out of file descriptors",
            "raise the limit with `ulimit -n` before the run",
        )
    };
    Failure::new(
        FD_LIMIT,
        None,
        format!(
            "{whose} ({}; open-files limit {limit}): not a server error; {fix}",
            std::io::Error::from_raw_os_error(code)
        ),
    )
}

fn transport_failure(error: &reqwest::Error, reading: bool) -> Failure {
    if let Some(code) = fd_exhaustion(error) {
        return fd_failure(code);
    }
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if reading {
        "stream"
    } else {
        "request"
    };
    // The chain carries the useful part ("connection refused", "connection closed ...").
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::new(kind, error.status().map(|s| s.as_u16()), message)
}

async fn read(
    endpoint: &Endpoint,
    request: &Prepared,
    exchange: &mut Exchange,
    slot: &crate::setup::Slot,
) -> Outcome {
    let response = endpoint
        .clients
        .now()
        .post(&endpoint.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("x-request-id", &request.id)
        .body(request.body.clone())
        .send()
        .await;
    let mut response = match response {
        Ok(r) => r,
        Err(error) => return Outcome::Errored(transport_failure(&error, false)),
    };
    exchange.http_version = Some(version_name(response.version()));
    exchange.connection_setup = slot.setup_of(&response);
    if let Some(setup) = exchange.connection_setup {
        exchange.sent = exchange.started + setup;
    }
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.unwrap_or_default();
        return status_failure(status.as_u16(), retry_after, &body);
    }
    if !endpoint.stream {
        return read_whole(response, exchange).await;
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Some(failure) = not_an_event_stream(status.as_u16(), content_type) {
        return failure;
    }
    let mut parser = SseParser::default();
    let mut state = StreamState::default();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(error) => return Outcome::Errored(transport_failure(&error, true)),
        };
        if let Some(outcome) = state.feed(&mut parser, &chunk, Instant::now(), exchange) {
            return outcome;
        }
        if state.done {
            return Outcome::Successful;
        }
    }
    state.at_end(&parser)
}

/// A response with a status other than 2xx: the server's error message when its body has one.
fn status_failure(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Outcome {
    let body = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.into_owned());
    let mut failure = Failure::new("http_status", Some(status), message);
    failure.retry_after = retry_after;
    Outcome::Errored(failure)
}

/// The failure of a streamed request whose response is not an event stream.
fn not_an_event_stream(status: u16, content_type: Option<&str>) -> Option<Outcome> {
    if content_type.is_some_and(|v| v.starts_with("text/event-stream")) {
        return None;
    }
    Some(Outcome::Errored(Failure::new(
        "decode",
        Some(status),
        format!(
            "expected a text/event-stream response, got content type {}",
            content_type.unwrap_or("none")
        ),
    )))
}

impl StreamState {
    /// Feeds one read's bytes, every event they complete timed `at`; the outcome when the
    /// stream failed.
    fn feed(
        &mut self,
        parser: &mut SseParser,
        bytes: &[u8],
        at: Instant,
        exchange: &mut Exchange,
    ) -> Option<Outcome> {
        parser.feed(bytes, |data| self.event(data, at, exchange));
        if let Some(failure) = self.failure.take() {
            return Some(Outcome::Errored(failure));
        }
        if parser.oversized() {
            return Some(Outcome::Errored(Failure::new(
                "decode",
                None,
                format!(
                    "an SSE event grew past {} MiB without ending",
                    crate::sse::MAX_EVENT_BYTES >> 20
                ),
            )));
        }
        None
    }

    /// The outcome of a stream that ended without `[DONE]`.
    fn at_end(&self, parser: &SseParser) -> Outcome {
        if parser.has_partial_event() {
            return Outcome::Errored(Failure::new(
                "stream",
                None,
                "the stream ended in the middle of an event",
            ));
        }
        // No `[DONE]`: complete if the server said why it finished, else cut short.
        if self.finished {
            Outcome::Successful
        } else {
            Outcome::Errored(Failure::new(
                "stream",
                None,
                "the stream ended without a finish_reason or [DONE]",
            ))
        }
    }
}

#[derive(Default)]
struct StreamState {
    done: bool,
    finished: bool,
    failure: Option<Failure>,
}

impl StreamState {
    fn event(&mut self, data: &str, now: Instant, exchange: &mut Exchange) {
        if self.done || self.failure.is_some() {
            return;
        }
        if data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        let chunk: Chunk<'_> = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(error) => {
                self.failure = Some(Failure::new(
                    "decode",
                    None,
                    format!("invalid JSON in the stream: {error}"),
                ));
                return;
            }
        };
        if let Some(error) = chunk.error {
            let message = error["message"]
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned);
            let status = error["code"].as_u64().and_then(|c| u16::try_from(c).ok());
            self.failure = Some(Failure::new("server_error_object", status, message));
            return;
        }
        if let Some(usage) = chunk.usage {
            exchange.usage = Some(usage);
        }
        if let Some(timings) = chunk.timings {
            exchange.server_timings = Some(timings);
        }
        for choice in chunk.choices.iter().flatten() {
            keep_answer(choice.delta.as_ref(), exchange);
            if let Some(phase) = choice.phase() {
                if let Some(last) = exchange.last_token {
                    exchange.gaps_ms.push((now - last).as_secs_f64() * 1000.0);
                }
                exchange.first_token.get_or_insert(now);
                exchange.last_token = Some(now);
                exchange.content_chunks += 1;
                exchange.phases.chunk(phase, now);
            }
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
        }
    }
}

async fn read_whole(response: reqwest::Response, exchange: &mut Exchange) -> Outcome {
    match response.bytes().await {
        Ok(body) => whole_body(&body, Instant::now(), exchange),
        Err(error) => Outcome::Errored(transport_failure(&error, true)),
    }
}

/// A response that was not streamed, whose last byte arrived `at`.
/// Appends a session turn's answer content (a chunk's `delta` or a whole body's `message`).
fn keep_answer(part: Option<&Delta<'_>>, exchange: &mut Exchange) {
    if let (Some(answer), Some(content)) = (
        exchange.answer.as_mut(),
        part.and_then(|p| p.content.as_deref()),
    ) {
        answer.push_str(content);
    }
}

fn whole_body(body: &[u8], at: Instant, exchange: &mut Exchange) -> Outcome {
    let chunk: Chunk<'_> = match serde_json::from_slice(body) {
        Ok(chunk) => chunk,
        Err(error) => {
            return Outcome::Errored(Failure::new(
                "decode",
                None,
                format!("invalid JSON body: {error}"),
            ))
        }
    };
    exchange.usage = chunk.usage;
    exchange.server_timings = chunk.timings;
    for choice in chunk.choices.iter().flatten() {
        keep_answer(choice.message.as_ref(), exchange);
    }
    let choices = || chunk.choices.iter().flatten();
    if choices().any(|c| c.phase().is_some()) {
        exchange.first_token = Some(at);
        exchange.last_token = Some(at);
        exchange.content_chunks = 1;
    }
    if choices().any(|c| c.phase() == Some(Phase::Answer)) {
        exchange.phases.first_answer = Some(at);
    }
    exchange.phases.unstreamed_reasoning = choices().any(|c| {
        [&c.delta, &c.message]
            .into_iter()
            .flatten()
            .any(Delta::has_reasoning)
    });
    Outcome::Successful
}

/// The most of an error response's body read for its message.
const ERROR_BODY_BYTES: usize = 64 << 10;
/// The most of a response that was not streamed.
const WHOLE_BODY_BYTES: usize = 64 << 20;
/// How long a stream that sent `[DONE]` gets to end its body, so its connection can be reused.
const BODY_END_GRACE: Duration = Duration::from_millis(100);

/// [`read`] on the own HTTP/1.1 client: every content event is timed by the kernel's receive
/// time of the read that completed it.
async fn read_wire(
    endpoint: &Endpoint,
    wire: &crate::http1::Client,
    request: &Prepared,
    exchange: &mut Exchange,
) -> Outcome {
    use crate::http1::WireError;
    let failed = |error: WireError, kind: &'static str| {
        if let Some(code) = error.io().and_then(|io| fd_exhaustion(io)) {
            return Outcome::Errored(fd_failure(code));
        }
        let kind = match error {
            WireError::ConnectTimeout { .. } | WireError::ReadTimeout(_) => "timeout",
            WireError::Connect { .. } => "connect",
            WireError::Head(_) | WireError::Chunked(_) => "decode",
            _ => kind,
        };
        Outcome::Errored(Failure::new(kind, None, error.to_string()))
    };
    let (mut connection, setup) = match wire.connection().await {
        Ok(opened) => opened,
        Err(error) => return failed(error, "connect"),
    };
    exchange.connection_setup = setup;
    exchange.timing.kernel = connection.stamped();
    if let Err(error) = connection
        .send(&wire.request(&request.id, &request.body))
        .await
    {
        return failed(error, "request");
    }
    // The write returned: the kernel holds the whole request, the server can see it.
    exchange.sent = Instant::now();
    let (head, first_read) = match connection.head(wire.read_timeout()).await {
        Ok(head) => head,
        Err(error) => return failed(error, "request"),
    };
    exchange.http_version = Some(head.version);
    let mut body = head.body(wire.read_timeout());
    let mut pending = Some(first_read);
    let mut bytes = Vec::new();
    let success = (200..300).contains(&head.status);
    if !success || !endpoint.stream {
        let limit = if success {
            WHOLE_BODY_BYTES
        } else {
            ERROR_BODY_BYTES
        };
        let mut whole = Vec::new();
        let mut last = None;
        loop {
            match connection.body(&mut body, &mut bytes, &mut pending).await {
                Ok(Some(stamp)) => {
                    whole.extend_from_slice(&bytes);
                    last = Some(stamp);
                    if whole.len() > limit {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) if !success => {
                    tracing::debug!("reading an error response: {error}");
                    break;
                }
                Err(error) => return failed(error, "stream"),
            }
        }
        if body.reusable() {
            wire.release(connection);
        }
        if !success {
            return status_failure(head.status, head.retry_after, &whole);
        }
        if whole.len() > limit {
            return Outcome::Errored(Failure::new(
                "decode",
                None,
                format!("a response body larger than {} MiB", limit >> 20),
            ));
        }
        let at = last.map_or_else(Instant::now, |stamp| {
            exchange.timing.note(&stamp, 1);
            stamp.arrival()
        });
        return whole_body(&whole, at, exchange);
    }
    if let Some(failure) = not_an_event_stream(head.status, head.content_type.as_deref()) {
        return failure;
    }
    let mut parser = SseParser::default();
    let mut state = StreamState::default();
    loop {
        let stamp = match connection.body(&mut body, &mut bytes, &mut pending).await {
            Ok(Some(stamp)) => stamp,
            Ok(None) => break,
            Err(error) => return failed(error, "stream"),
        };
        let before = exchange.content_chunks;
        let at = stamp.arrival();
        if let Some(outcome) = state.feed(&mut parser, &bytes, at, exchange) {
            return outcome;
        }
        let events = exchange.content_chunks - before;
        exchange.timing.note(&stamp, events);
        if state.done {
            // The body's end usually came in the same read; else give it a moment, so the
            // connection can carry the next request.
            let end = async {
                while let Ok(Some(_)) = connection.body(&mut body, &mut bytes, &mut pending).await {
                }
            };
            let _ = tokio::time::timeout(BODY_END_GRACE, end).await;
            if body.reusable() {
                wire.release(connection);
            }
            return Outcome::Successful;
        }
    }
    let outcome = state.at_end(&parser);
    if body.reusable() && matches!(outcome, Outcome::Successful) {
        wire.release(connection);
    }
    outcome
}

impl ReadTiming {
    /// Notes one read of the response that completed `events` content events.
    fn note(&mut self, stamp: &crate::receive_time::Stamp, events: u32) {
        if !self.kernel {
            return;
        }
        match stamp.client_delay() {
            None => self.unstamped_reads += 1,
            Some(delay) if events > 0 => self.client_delays_ms.push(delay.as_secs_f64() * 1000.0),
            Some(_) => {}
        }
        if events > 1 {
            self.coalesced_events += events;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `body` as one `text/event-stream` response to every request, in pieces of
    /// `piece` bytes (so events arrive split as they would off a socket).
    async fn replay(body: &'static [u8], piece: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/completions", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                    .await;
                for part in body.chunks(piece) {
                    let _ = socket.write_all(part).await;
                    let _ = socket.flush().await;
                }
            }
        });
        url
    }

    /// The own HTTP/1.1 client for `url`.
    fn wire_client(url: &str) -> crate::http1::Client {
        crate::http1::Client::new(crate::http1::Settings {
            url,
            headers: &http::HeaderMap::new(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            reuse: std::sync::Arc::new(crate::connection::Reuse::fixed(true)),
            opened: std::sync::Arc::default(),
        })
        .unwrap()
        .unwrap()
    }

    /// Streams recorded from llama.cpp's server (fixtures/sse/README.md): usage in the last
    /// content chunk (completions), in a `choices: []` chunk of its own (chat), or not at all
    /// (chat without `stream_options`); a role-only first chunk with `content: null`;
    /// `timings` in the last chunk.
    #[tokio::test]
    async fn streams_recorded_from_llama_cpp_are_read_as_the_server_meant() {
        // (body, (prompt, completion) tokens in its usage, its predicted_per_token_ms)
        type Transcript = (&'static [u8], Option<(u64, u64)>, f64);
        let transcripts: [Transcript; 4] = [
            (
                include_bytes!("../fixtures/sse/llamacpp-completions-usage.sse"),
                Some((5, 5)),
                3.814,
            ),
            (
                include_bytes!("../fixtures/sse/llamacpp-completions-no-stream-options.sse"),
                Some((5, 5)),
                2.7435,
            ),
            (
                include_bytes!("../fixtures/sse/llamacpp-chat-usage.sse"),
                Some((19, 5)),
                2.3405,
            ),
            (
                include_bytes!("../fixtures/sse/llamacpp-chat-no-usage.sse"),
                None,
                2.30075,
            ),
        ];
        for (i, (body, usage, per_token_ms)) in transcripts.into_iter().enumerate() {
            for (piece, own) in [(7, false), (4096, false), (7, true), (4096, true)] {
                let url = replay(body, piece).await;
                let endpoint = Endpoint {
                    clients: crate::connection::Clients::single(
                        bench_target::plain_client().unwrap(),
                    ),
                    wire: own.then(|| wire_client(&url)),
                    url,
                    stream: true,
                    request_timeout: Some(Duration::from_secs(5)),
                };
                let request = Prepared {
                    body: Bytes::from_static(b"{}"),
                    prompt_tokens: 5,
                    id: "req-0".to_owned(),
                    turn: None,
                };
                let ex = exchange(&endpoint, &request, Instant::now(), &CancelToken::new()).await;
                assert!(matches!(ex.outcome, Outcome::Successful), "{i}: {ex:?}");
                assert_eq!(ex.timing.kernel, own, "{i}");
                assert_eq!(ex.content_chunks, 5, "{i}: five tokens, one chunk each");
                assert_eq!(ex.gaps_ms.len(), 4, "{i}");
                assert_eq!(
                    ex.usage
                        .map(|u| (u.prompt_tokens.unwrap(), u.completion_tokens.unwrap())),
                    usage,
                    "{i}"
                );
                let timings = ex.server_timings.unwrap();
                assert_eq!(timings.predicted_n, Some(5), "{i}");
                let got = timings.predicted_per_token_ms.unwrap();
                assert!((got - per_token_ms).abs() < 1e-3, "{i}: {got}");
            }
        }
    }

    /// A client too busy to read at once (every read 5 ms late, against the mock's 10 ms
    /// between tokens): the kernel-stamped TTFT and ITL stay where the server put them, while
    /// the times the client read them move by the delay, which the client-delay figures show.
    #[test]
    fn timed_a_busy_client_does_not_move_kernel_stamped_times() {
        // The mock on a runtime of its own, so the client's busy thread never delays it.
        let mock_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mock = mock_runtime
            .block_on(bench_mock::MockServer::start(bench_mock::MockConfig {
                port: 0,
                ttft_ms: 50.0,
                itl_ms: 10.0,
                output_tokens: 12,
                ..bench_mock::MockConfig::default()
            }))
            .unwrap();
        let url = format!("{}/v1/completions", mock.base_url());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let clock = crate::aggregate::Clock::new();
        let mut results = Vec::new();
        for busy in [None, Some(Duration::from_millis(5))] {
            let mut wire = wire_client(&url);
            wire.busy_before_read = busy;
            let endpoint = Endpoint {
                clients: crate::connection::Clients::single(bench_target::plain_client().unwrap()),
                wire: Some(wire),
                url: url.clone(),
                stream: true,
                request_timeout: Some(Duration::from_secs(10)),
            };
            for i in 0..4 {
                let request = Prepared {
                    body: Bytes::from_static(
                        br#"{"model":"mock","prompt":"hello","max_tokens":12,"stream":true}"#,
                    ),
                    prompt_tokens: 1,
                    id: format!("busy-{}-{i}", busy.is_some()),
                    turn: None,
                };
                let ex = runtime.block_on(exchange(
                    &endpoint,
                    &request,
                    Instant::now(),
                    &CancelToken::new(),
                ));
                assert!(matches!(ex.outcome, Outcome::Successful), "{ex:?}");
                results.push((busy.is_some(), request.id, ex));
            }
        }
        let truth = mock.ground_truth();
        mock_runtime.block_on(mock.shutdown());
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        for busy in [false, true] {
            let mut first_token_error_ms = Vec::new();
            let (mut gaps, mut delays) = (Vec::new(), Vec::new());
            for (_, id, ex) in results.iter().filter(|(b, ..)| *b == busy) {
                let server = truth
                    .iter()
                    .find(|r| r.request_id.as_deref() == Some(id.as_str()))
                    .expect("the mock saw the request");
                let client_us = clock.at(ex.first_token.unwrap()).unix_micros();
                let server_us = server.first_token_unix_us.unwrap();
                first_token_error_ms.push((client_us - server_us) as f64 / 1000.0);
                assert_eq!(ex.content_chunks, 12);
                gaps.extend_from_slice(&ex.gaps_ms);
                delays.extend_from_slice(&ex.timing.client_delays_ms);
                assert_eq!(ex.timing.unstamped_reads, 0, "every read stamped");
            }
            let error = median(first_token_error_ms.iter().map(|e| e.abs()).collect());
            assert!(
                error < 1.0,
                "busy {busy}: first-token stamp {error:.3} ms from the server's write ({first_token_error_ms:?})"
            );
            let itl = median(gaps.clone());
            assert!(
                (itl - 10.0).abs() < 1.0,
                "busy {busy}: ITL median {itl:.3} ms against the mock's 10 ms"
            );
            let delay = median(delays);
            if busy {
                assert!(
                    delay >= 4.0,
                    "the reads came about 5 ms after the data: {delay:.3} ms"
                );
            } else {
                assert!(delay < 4.0, "an idle client reads at once: {delay:.3} ms");
            }
        }
    }

    /// An error chain the way hyper builds one for a connection that could not be opened.
    #[derive(Debug)]
    struct Wrapped(&'static str, Box<dyn std::error::Error + Send + Sync>);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.1)
        }
    }

    #[test]
    fn running_out_of_file_descriptors_is_found_anywhere_in_the_chain() {
        let emfile = || std::io::Error::from_raw_os_error(24);
        let direct = emfile();
        assert_eq!(fd_exhaustion(&direct), Some(24));
        let deep = Wrapped(
            "client error (Connect)",
            Box::new(Wrapped("tcp open error", Box::new(emfile()))),
        );
        assert_eq!(fd_exhaustion(&deep), Some(24));
        // An io::Error wrapping one: its source() skips the wrapped error.
        let custom = std::io::Error::other(std::io::Error::from_raw_os_error(23));
        let deep = Wrapped("client error (Connect)", Box::new(custom));
        assert_eq!(fd_exhaustion(&deep), Some(23));
        let refused = Wrapped(
            "client error (Connect)",
            Box::new(std::io::Error::from_raw_os_error(111)),
        );
        assert_eq!(
            fd_exhaustion(&refused),
            None,
            "ECONNREFUSED is the server's"
        );
        let failure = fd_failure(24);
        assert_eq!(failure.kind, FD_LIMIT);
        assert!(
            failure
                .message
                .contains("the client ran out of file descriptors")
                && failure.message.contains("ulimit -n"),
            "{}",
            failure.message
        );
    }

    /// Reasoning in `delta.reasoning` (OpenRouter, newer vLLM) or `reasoning_content`: those
    /// chunks are content (TTFT), but the answer starts at the first `content`; a chunk with
    /// both is the answer's; the usage's `completion_tokens_details` is read.
    #[tokio::test]
    async fn reasoning_chunks_come_before_the_answer() {
        const BODY: &[u8] = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"reasoning\":\"hm\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"reasoning_content\":\" so\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"reasoning\":\"ok\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"reasoning\":\".\",\"content\":\"A\"}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"B\"},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":9,\"completion_tokens_details\":{\"reasoning_tokens\":6}}}\n\n\
data: [DONE]\n\n";
        for own in [false, true] {
            let url = replay(BODY, 4096).await;
            let endpoint = Endpoint {
                clients: crate::connection::Clients::single(bench_target::plain_client().unwrap()),
                wire: own.then(|| wire_client(&url)),
                url,
                stream: true,
                request_timeout: Some(Duration::from_secs(5)),
            };
            let request = Prepared {
                body: Bytes::from_static(b"{}"),
                prompt_tokens: 3,
                id: "req-0".to_owned(),
                turn: None,
            };
            let ex = exchange(&endpoint, &request, Instant::now(), &CancelToken::new()).await;
            assert!(matches!(ex.outcome, Outcome::Successful), "{ex:?}");
            assert_eq!(ex.content_chunks, 5);
            assert_eq!(ex.phases.reasoning_chunks, 3);
            assert!(ex
                .phases
                .first_answer
                .is_some_and(|a| a >= ex.first_token.unwrap()));
            assert_eq!(ex.phases.reasoning_gaps_ms.len(), 2);
            assert_eq!(ex.phases.answer_gaps_ms.len(), 1);
            assert_eq!(ex.gaps_ms.len(), 4);
            assert_eq!(ex.usage.and_then(|u| u.reasoning_tokens()), Some(6));
        }
        // Not streamed: the message's reasoning is noted, the answer is the body.
        let mut ex = exchange_at_rest();
        let body = br#"{"choices":[{"message":{"role":"assistant","reasoning_content":"hm","content":"A"}}]}"#;
        let at = Instant::now();
        assert!(matches!(whole_body(body, at, &mut ex), Outcome::Successful));
        assert_eq!(ex.phases.first_answer, Some(at));
        assert!(ex.phases.unstreamed_reasoning);
        let mut ex = exchange_at_rest();
        let body = br#"{"choices":[{"message":{"role":"assistant","reasoning_content":"hm","content":null}}]}"#;
        assert!(matches!(whole_body(body, at, &mut ex), Outcome::Successful));
        assert_eq!((ex.first_token, ex.phases.first_answer), (Some(at), None));
    }

    fn exchange_at_rest() -> Exchange {
        let now = Instant::now();
        Exchange {
            intended: now,
            started: now,
            sent: now,
            first_token: None,
            last_token: None,
            end: now,
            gaps_ms: Vec::new(),
            content_chunks: 0,
            phases: Phases::default(),
            usage: None,
            server_timings: None,
            client_prompt_tokens: 0,
            http_version: None,
            connection_setup: None,
            timing: ReadTiming::default(),
            outcome: Outcome::Successful,
            turn: None,
            answer: None,
        }
    }

    /// mistral.rs puts `usage: null` in every chunk until the last: null is no usage, and
    /// a later real one is kept.
    #[test]
    fn a_null_usage_is_no_usage() {
        let chunk: Chunk<'_> = serde_json::from_str(
            r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":null}"#,
        )
        .unwrap();
        assert!(chunk.usage.is_none() && chunk.timings.is_none());
    }
}
