//! Multi-turn sessions in a report: each turn index's figures (prefix reuse shows as TTFT
//! falling with the turn) and per-session totals.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Distribution;

/// A benchmark's sessions (a session is one simulated user's conversation; each of its turns
/// is a request, counted in the benchmark's request totals as every request is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    /// Sessions that sent at least one turn.
    pub started: u64,
    /// Sessions whose every turn was answered successfully.
    pub completed: u64,
    /// Sessions that ended early: a turn failed or was cut off, or the benchmark stopped
    /// (time limit, `max_requests`, interruption) before their last turn.
    pub partial: u64,
    /// Turns sent per session, over every session started.
    pub turns_per_session: Option<Distribution>,
    /// Completed sessions: seconds from the send of their first turn to the end of their last
    /// answer, think times included.
    pub duration_s: Option<Distribution>,
    /// Completed sessions: output tokens over all their turns.
    pub output_tokens: Option<Distribution>,
    /// Successful turns of the measured window by turn index (1 is the first), in order; the
    /// last entry may fold every later turn (`and_later`).
    pub by_turn: Vec<TurnMetrics>,
}

/// The successful requests of one turn index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnMetrics {
    /// The turn index, from 1.
    pub turn: u32,
    /// True when this entry also holds every later turn (the report keeps a bounded number of
    /// turn indexes).
    pub and_later: bool,
    /// Successful requests of this turn index.
    pub requests: u64,
    /// Time to first token, ms.
    pub ttft_ms: Option<Distribution>,
    /// Request latency, ms.
    pub request_latency_ms: Option<Distribution>,
    /// Prompt tokens: the whole history so far plus the new message.
    pub prompt_tokens: Option<Distribution>,
    /// Prompt tokens the server reported it took from its cache (`usage.
    /// prompt_tokens_details.cached_tokens`, or llama.cpp's `timings.cache_n`); `null` when
    /// the server reported neither.
    pub cached_prompt_tokens: Option<Distribution>,
    /// Output tokens.
    pub output_tokens: Option<Distribution>,
}
