//! bench-mock over real HTTP on loopback: wire format, timing, load model, faults, ground truth.

use std::time::{Duration, Instant};

use bench_mock::{FaultSpec, MockConfig, MockServer};
use serde_json::{json, Value};

fn config() -> MockConfig {
    MockConfig {
        ttft_ms: 20.0,
        itl_ms: 5.0,
        output_tokens: 6,
        ..MockConfig::default()
    }
}

/// A response read chunk by chunk, with when each network chunk arrived.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
    /// Arrival time of each SSE event, by event index (from the chunk that completed it).
    event_times: Vec<Instant>,
    /// The body ended with a transport error (connection closed mid-response).
    broken: bool,
    sent: Instant,
    /// When the body ended.
    done: Instant,
}

async fn post(base: String, path: &str, body: Value) -> Result<Reply, reqwest::Error> {
    let client = bench_target::plain_client().unwrap();
    let sent = Instant::now();
    let mut response = client
        .post(format!("{base}{path}"))
        .header("x-request-id", "client-7")
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = String::new();
    let mut event_times = Vec::new();
    let mut broken = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.push_str(std::str::from_utf8(&chunk).unwrap());
                let now = Instant::now();
                while event_times.len() < body.matches("\n\n").count() {
                    event_times.push(now);
                }
            }
            Ok(None) => break,
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
        event_times,
        broken,
        sent,
        done: Instant::now(),
    })
}

/// An SSE parser written from the WHATWG rules, independent of the mock's writer: events are
/// separated by blank lines, `data:` lines (one optional leading space removed) are joined by
/// newlines, comment lines start with `:`, and a trailing unterminated event is discarded.
fn sse_events(body: &str) -> Vec<String> {
    let normalized = body.replace("\r\n", "\n").replace('\r', "\n");
    let mut events = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    let mut lines = normalized.split('\n').peekable();
    let mut terminated = normalized.ends_with('\n');
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            terminated &= line.is_empty();
            break;
        }
        if line.is_empty() {
            if !data.is_empty() {
                events.push(data.join("\n"));
                data.clear();
            }
        } else if line.starts_with(':') {
            continue;
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    let _ = terminated;
    events
}

fn chat(max_tokens: Option<u32>, stream: bool) -> Value {
    let mut body = json!({
        "model": "my-model",
        "messages": [{"role": "user", "content": "hello there mock"}],
        "stream": stream,
        "stream_options": {"include_usage": true},
    });
    if let Some(n) = max_tokens {
        body["max_tokens"] = json!(n);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stream_framing_usage_and_ids_match_openai() {
    let server = MockServer::start(config()).await.unwrap();
    let reply = post(server.base_url(), "/v1/chat/completions", chat(None, true))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    assert_eq!(reply.headers["x-request-id"], "client-7");
    assert!(reply.body.ends_with("data: [DONE]\n\n"));
    let events = sse_events(&reply.body);
    assert_eq!(events.len(), 1 + 6 + 1 + 1, "role, 6 tokens, usage, [DONE]");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "my-model");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let contents: Vec<&str> = chunks[1..7]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert!(contents.iter().all(|t| t.starts_with(' ')));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert!(chunks[1..6]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(chunks[7]["choices"], json!([]));
    assert_eq!(
        chunks[7]["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}),
        "16 bytes / 4"
    );

    let truth = server.ground_truth();
    assert_eq!(truth.len(), 1);
    let t = &truth[0];
    assert_eq!(
        (t.id.as_str(), t.request_id.as_deref()),
        (chunks[0]["id"].as_str().unwrap(), Some("client-7"))
    );
    assert_eq!(
        (
            t.tokens_sent,
            t.output_tokens_planned,
            t.status,
            t.completed
        ),
        (6, 6, 200, true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_stream_without_usage_and_non_streaming_bodies() {
    let server = MockServer::start(config()).await.unwrap();
    let body = json!({"model": "m", "prompt": "abcdefgh", "stream": true, "max_tokens": 3});
    let reply = post(server.base_url(), "/v1/completions", body)
        .await
        .unwrap();
    let events = sse_events(&reply.body);
    assert_eq!(
        events.len(),
        4,
        "3 tokens and [DONE], no usage without include_usage"
    );
    let last: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(last["object"], "text_completion");
    assert_eq!(last["choices"][0]["finish_reason"], "length");

    let reply = post(
        server.base_url(),
        "/v1/chat/completions",
        chat(Some(4), false),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        5
    );
    let elapsed = reply.done - reply.sent;
    assert!(elapsed >= Duration::from_millis(20 + 3 * 5), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_length_follows_max_tokens_and_ignore_eos() {
    let server = MockServer::start(MockConfig {
        ttft_ms: 1.0,
        itl_ms: 0.1,
        output_tokens: 16,
        ..config()
    })
    .await
    .unwrap();
    for (max_tokens, ignore_eos, expected, reason) in [
        (8, false, 8, "length"),
        (32, false, 16, "stop"),
        (32, true, 32, "length"),
    ] {
        let mut body = chat(Some(max_tokens), false);
        body["ignore_eos"] = json!(ignore_eos);
        let v: Value = serde_json::from_str(
            &post(server.base_url(), "/v1/chat/completions", body)
                .await
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(
            v["usage"]["completion_tokens"], expected,
            "max_tokens={max_tokens} ignore_eos={ignore_eos}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], reason);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_other_routes() {
    let server = MockServer::start(config()).await.unwrap();
    let reply = post(
        server.base_url(),
        "/v1/chat/completions",
        json!({"model": "m"}),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 400);
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "messages");
    let reply = post(server.base_url(), "/v1/embeddings", json!({}))
        .await
        .unwrap();
    assert_eq!(reply.status, 404);
    let client = bench_target::plain_client().unwrap();
    let health = client
        .get(format!("{}/health", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let models: Value = serde_json::from_str(
        &client
            .get(format!("{}/v1/models", server.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(models["data"][0]["id"], "mock-model");
}

fn with_fault(spec: &str) -> MockConfig {
    MockConfig {
        faults: vec![FaultSpec::parse(spec).unwrap()],
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_faults_send_openai_error_bodies() {
    for (spec, status, retry_after) in [
        ("http_429:every=1,seconds=3", 429, Some("3")),
        ("http_500:p=1", 500, None),
        ("http_503:every=1", 503, Some("1")),
    ] {
        let server = MockServer::start(with_fault(spec)).await.unwrap();
        let reply = post(server.base_url(), "/v1/chat/completions", chat(None, true))
            .await
            .unwrap();
        assert_eq!(reply.status, status, "{spec}");
        assert_eq!(
            reply
                .headers
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            retry_after,
            "{spec}"
        );
        let v: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["error"]["code"], status);
        assert_eq!(
            server.ground_truth()[0].fault.as_deref(),
            Some(spec.split(':').next().unwrap())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_faults_break_the_transport() {
    let server = MockServer::start(with_fault("reset_before_headers:every=1"))
        .await
        .unwrap();
    assert!(
        post(server.base_url(), "/v1/chat/completions", chat(None, true))
            .await
            .is_err()
    );
    assert_eq!(server.ground_truth()[0].status, 0);

    let (server, reply) = stream_with_fault("close_mid_stream:every=1,after=3").await;
    assert!(reply.broken);
    let events = sse_events(&reply.body);
    assert_eq!(
        events.len(),
        4,
        "role and 3 tokens, then the connection closes"
    );
    let t = &server.ground_truth()[0];
    assert_eq!((t.tokens_sent, t.completed), (3, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_faults_change_the_event_sequence() {
    let (_, reply) = stream_with_fault("malformed_chunk:every=1,after=2").await;
    let events = sse_events(&reply.body);
    let broken: Vec<&String> = events
        .iter()
        .filter(|e| *e != "[DONE]" && serde_json::from_str::<Value>(e).is_err())
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(events[3], *broken[0], "after the role chunk and 2 tokens");
    assert_eq!(
        events.len(),
        10,
        "the stream goes on after the broken chunk"
    );

    let (_, reply) = stream_with_fault("missing_done:every=1").await;
    assert!(!reply.broken);
    let events = sse_events(&reply.body);
    assert_eq!(events.len(), 8);
    assert_ne!(events.last().unwrap(), "[DONE]");

    let (_, reply) = stream_with_fault("error_in_stream:every=1,after=2").await;
    let events = sse_events(&reply.body);
    assert_eq!(events.len(), 5, "role, 2 tokens, the error object, [DONE]");
    let error: Value = serde_json::from_str(&events[3]).unwrap();
    assert_eq!(error["error"]["type"], "server_error");

    let (_, reply) = stream_with_fault("stall:every=1,after=2,seconds=0.3").await;
    let gap = reply.event_times[3] - reply.event_times[2];
    assert!(
        gap >= Duration::from_millis(300),
        "the third token waits for the stall: {gap:?}"
    );
    assert_eq!(sse_events(&reply.body).len(), 9);
}

/// Starts a mock with one fault and sends it one streaming chat request.
async fn stream_with_fault(spec: &str) -> (MockServer, Reply) {
    let server = MockServer::start(with_fault(spec)).await.unwrap();
    let reply = post(server.base_url(), "/v1/chat/completions", chat(None, true))
        .await
        .unwrap();
    (server, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_batch_wait_and_a_full_queue_refuses() {
    let server = MockServer::start(MockConfig {
        max_batch: 2,
        ttft_ms: 40.0,
        itl_ms: 10.0,
        output_tokens: 4,
        ..config()
    })
    .await
    .unwrap();
    let requests =
        (0..6).map(|_| post(server.base_url(), "/v1/chat/completions", chat(None, false)));
    let replies = futures_join_all(requests).await;
    let mut latencies: Vec<Duration> = replies.iter().map(|r| r.done - r.sent).collect();
    latencies.sort();
    // One request takes 40 + 3 * 10 = 70 ms; six through two slots take three rounds.
    assert!(latencies[0] >= Duration::from_millis(70), "{latencies:?}");
    assert!(
        latencies[5] >= Duration::from_millis(3 * 70),
        "{latencies:?}"
    );
    let queued = server
        .ground_truth()
        .iter()
        .filter(|t| t.admitted_unix_us.unwrap() - t.arrival_unix_us > 30_000)
        .count();
    assert_eq!(queued, 4, "four of six waited for a slot");

    let server = MockServer::start(MockConfig {
        max_batch: 1,
        max_queue: Some(1),
        queue_full_status: 503,
        ..config()
    })
    .await
    .unwrap();
    let replies = futures_join_all(
        (0..4).map(|_| post(server.base_url(), "/v1/chat/completions", chat(None, false))),
    )
    .await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 503, 503]);
}

async fn futures_join_all<
    F: std::future::Future<Output = Result<Reply, reqwest::Error>> + Send + 'static,
>(
    futures: impl Iterator<Item = F>,
) -> Vec<Reply> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_follow_their_deadlines_and_the_log_file_holds_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("truth.jsonl");
    let server = MockServer::start(MockConfig {
        ttft_ms: 30.0,
        itl_ms: 4.0,
        output_tokens: 20,
        log: Some(log.clone()),
        ..config()
    })
    .await
    .unwrap();
    let reply = post(server.base_url(), "/v1/chat/completions", chat(None, true))
        .await
        .unwrap();
    let t = server.ground_truth().remove(0);
    let ttft_us = t.first_token_unix_us.unwrap() - t.admitted_unix_us.unwrap();
    let decode_us = t.last_token_unix_us.unwrap() - t.first_token_unix_us.unwrap();
    // Never early; late only by what a busy shared machine adds (`cargo xtask bench mock`
    // measures the precision itself).
    assert!(
        (30_000..60_000).contains(&ttft_us),
        "server TTFT {ttft_us} us"
    );
    assert!(
        (75_000..95_000).contains(&decode_us),
        "19 gaps of 4 ms took {decode_us} us"
    );
    // The client can only see tokens late, never early; a late first token shortens it.
    let client_decode = reply.event_times[20] - reply.event_times[1];
    assert!(
        client_decode >= Duration::from_millis(70),
        "{client_decode:?}"
    );
    let stats = server.stats();
    assert_eq!(stats.token_lateness_us.count, 20);
    assert!(
        stats.token_lateness_us.p50 < 1_000.0,
        "{:?}",
        stats.token_lateness_us
    );
    server.shutdown().await;
    let lines: Vec<bench_mock::RequestRecord> = bench_tests::json_lines(&log);
    assert_eq!(lines, vec![t]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_tokens_are_counted_with_the_configured_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    // A word-level tokenizer over a tiny vocabulary, written as Hugging Face's tokenizer.json.
    let vocab: serde_json::Map<String, Value> = ["[UNK]", "hello", "there", "mock", "server"]
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), json!(i)))
        .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let server = MockServer::start(MockConfig {
        tokenizer: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await
    .unwrap();
    let mut body = chat(None, false);
    body["messages"][0]["content"] = json!("hello there mock server hello unknownword");
    let v: Value = serde_json::from_str(
        &post(server.base_url(), "/v1/chat/completions", body)
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], 6);

    let error = MockServer::start(MockConfig {
        tokenizer: Some(dir.path().join("missing.json")),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid mock setting `tokenizer`: cannot load"),
        "{error}"
    );
}
