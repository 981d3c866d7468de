//! Multi-turn sessions in the native engine against the mock: what the server received turn
//! by turn (the whole conversation, the answers as the mock sent them), the per-turn and
//! per-session figures, and the other engines' refusal.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bench_core::config::ConfigFormat;
use bench_core::schema::StopReason;
use bench_core::{registry, Config, Report, RunContext};
use bench_mock::{MessageDigest, MockConfig, MockServer, RequestRecord};

fn tokenizer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/tokenizer")
}

async fn run(mock: &MockServer, config: &str) -> Report {
    let text = format!(
        "benchmark_engine = \"native\"\n[target]\nurl = \"{}\"\nmodel = \"m\"\n{config}",
        mock.base_url()
    );
    let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
    let engine = registry::engine_for(&config).unwrap();
    engine.run(&config, &RunContext::default()).await.unwrap()
}

/// The mock's records by session (`s<n>` of the `<tag>-s<n>-t<k>` request ids), each session's
/// turns in order of `k`.
fn by_session(truth: Vec<RequestRecord>) -> BTreeMap<u64, Vec<RequestRecord>> {
    let mut sessions: BTreeMap<u64, BTreeMap<u32, RequestRecord>> = BTreeMap::new();
    for record in truth {
        let id = record.request_id.clone().unwrap();
        // `<tag>-s<n>-t<k>`: the run's tag, then the session and the turn.
        let (_tag, session_turn) = id.split_once("-s").unwrap();
        let (session, turn) = session_turn.split_once("-t").unwrap();
        sessions
            .entry(session.parse().unwrap())
            .or_default()
            .insert(turn.parse().unwrap(), record);
    }
    sessions
        .into_iter()
        .map(|(n, turns)| {
            let ks: Vec<u32> = turns.keys().copied().collect();
            assert_eq!(
                ks,
                (1..=ks.len() as u32).collect::<Vec<_>>(),
                "session {n}: turns in order, none missing"
            );
            (n, turns.into_values().collect())
        })
        .collect()
}

/// Turn k's messages are turn k-1's, then the answer the mock sent to it, then one new user
/// message: the history resent exactly, byte for byte (so token for token).
fn check_history(session: &[RequestRecord]) {
    for (k, turn) in session.iter().enumerate() {
        let messages = turn.messages.as_ref().unwrap();
        assert_eq!(messages.len(), 2 * k + 1, "turn {}: {messages:?}", k + 1);
        for (i, m) in messages.iter().enumerate() {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            assert_eq!(m.role, role, "turn {} message {i}", k + 1);
        }
        if k == 0 {
            continue;
        }
        let before = &session[k - 1];
        let earlier = before.messages.as_ref().unwrap();
        assert_eq!(
            &messages[..earlier.len()],
            &earlier[..],
            "turn {}: the earlier turns resent as they were",
            k + 1
        );
        let answer = MessageDigest::of("assistant", &bench_mock::response_text(before.tokens_sent));
        assert_eq!(
            messages[earlier.len()],
            answer,
            "turn {}: the answer as the mock sent it",
            k + 1
        );
        assert!(before.completed);
        let new = messages.last().unwrap();
        assert!(
            earlier.iter().all(|m| m != new),
            "turn {}: a new user message",
            k + 1
        );
        assert!(
            turn.prompt_tokens > before.prompt_tokens,
            "the prompt grows with the history"
        );
    }
}

/// Synchronous sessions of 4 turns cut by `max_requests = 10` (turns are requests): two whole
/// sessions and a third cut after its second turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_turn_resends_the_conversation_with_the_answers_received() {
    let server = MockServer::start(MockConfig {
        ttft_ms: 10.0,
        itl_ms: 1.0,
        tokenizer: Some(tokenizer()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let report = run(
        &server,
        &format!(
            "[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 10\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 40\nturn_prompt_tokens = 12\noutput_tokens = 6\n\
             turns = 4\nthink_seconds = 0.02\ntokenizer = {:?}\n",
            tokenizer().display().to_string()
        ),
    )
    .await;
    let b = &report.benchmarks[0];
    assert_eq!(b.stopped_by, Some(StopReason::MaxRequests));
    assert_eq!((b.requests.successful, b.requests.total), (10, 10));
    let sessions = by_session(server.ground_truth());
    let lengths: Vec<usize> = sessions.values().map(Vec::len).collect();
    assert_eq!(lengths, [4, 4, 2]);
    for session in sessions.values() {
        check_history(session);
        // The first message has prompt_tokens tokens, counted by the mock's tokenizer as the
        // client's (the later ones ride on the history, checked above by digest).
        assert_eq!(session[0].prompt_tokens, 40);
        assert_eq!(session[0].messages.as_ref().unwrap()[0].role, "user");
        // Think time: the next turn arrives at least 20 ms after the answer ended.
        for pair in session.windows(2) {
            let gap_us = pair[1].arrival_unix_us - pair[0].last_token_unix_us.unwrap();
            assert!(
                gap_us >= 19_000,
                "{gap_us} µs between an answer and the next turn"
            );
        }
    }
    let s = b.sessions.as_ref().unwrap();
    assert_eq!((s.started, s.completed, s.partial), (3, 2, 1));
    let turns = s.turns_per_session.as_ref().unwrap();
    assert_eq!((turns.min, turns.max), (2.0, 4.0));
    assert_eq!(
        s.duration_s.as_ref().unwrap().count,
        2,
        "completed sessions only"
    );
    assert!(s.duration_s.as_ref().unwrap().min > 3.0 * 0.02);
    let by_turn: Vec<(u32, u64)> = s.by_turn.iter().map(|t| (t.turn, t.requests)).collect();
    assert_eq!(by_turn, [(1, 3), (2, 3), (3, 2), (4, 2)]);
    let prompts: Vec<f64> = s
        .by_turn
        .iter()
        .map(|t| t.prompt_tokens.as_ref().unwrap().mean)
        .collect();
    // Each turn adds the 6-token answer and a 12-token message (the mock counts each with its
    // special tokens), so the server's prompt counts rise turn by turn.
    assert_eq!(prompts[0], 40.0);
    assert!(
        prompts.windows(2).all(|w| w[1] > w[0] + 12.0),
        "{prompts:?}"
    );
    assert!(s
        .by_turn
        .iter()
        .all(|t| t.ttft_ms.is_some() && t.cached_prompt_tokens.is_none()));
}

/// Sessions arriving at a rate: each arrival starts a session whose turns follow its own
/// answers; the time limit cuts the sessions in progress, counted partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_arrive_at_a_rate_and_the_time_limit_leaves_them_partial() {
    let server = MockServer::start(MockConfig {
        ttft_ms: 20.0,
        itl_ms: 2.0,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let report = run(
        &server,
        "[profile]\nkind = \"constant\"\nrates = [10.0]\n[constraints]\nmax_seconds = 1.5\n\
         [data]\nkind = \"synthetic\"\nprompt_tokens = 20\noutput_tokens = 4\napproximate = true\n\
         turns = 3\nthink_seconds = 0.2\nthink_distribution = \"exponential\"\n",
    )
    .await;
    let b = &report.benchmarks[0];
    let s = b.sessions.as_ref().unwrap();
    let sessions = by_session(server.ground_truth());
    assert!(
        (13..=17).contains(&sessions.len()),
        "about 15 sessions in 1.5 s at 10/s: {}",
        sessions.len()
    );
    // A session whose first turn the time limit cancelled before it reached the server is
    // started (its turn was claimed) but absent from the ground truth.
    let seen = sessions.len() as u64;
    assert!(
        (seen..=seen + 2).contains(&s.started),
        "{} started, {seen} seen",
        s.started
    );
    assert!(s.completed >= 3 && s.partial >= 1, "{s:?}");
    assert_eq!(s.completed + s.partial, s.started);
    for session in sessions.values() {
        check_history(session);
    }
    let turns_total: u64 = s.by_turn.iter().map(|t| t.requests).sum();
    assert_eq!(
        turns_total, b.requests.successful,
        "every successful turn has its index"
    );
}

#[test]
fn other_engines_refuse_sessions_naming_the_key() {
    for engine in ["guidellm", "genai-bench"] {
        let text = format!(
            "benchmark_engine = \"{engine}\"\n[target]\nurl = \"http://127.0.0.1:9\"\nmodel = \"m\"\n\
             [profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 4\n\
             [data]\nkind = \"synthetic\"\nprompt_tokens = 20\noutput_tokens = 4\nturns = 3\ntokenizer = {:?}\n",
            tokenizer().display().to_string()
        );
        let config = Config::load(&text, ConfigFormat::Toml, &[]).unwrap();
        let error = registry::engine_for(&config).err().unwrap().to_string();
        assert!(error.contains("data.turns"), "{engine}: {error}");
    }
}
