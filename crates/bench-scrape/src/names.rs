//! The common set and where each server keeps it: one table from the common names to vLLM's,
//! SGLang's, llama.cpp's and TGI's metric names. Each entry lists alternatives in order; the
//! first one present on a page is used (a server exposing an old and a new name at once is
//! counted once); an alternative of several names is their sum (llama.cpp counts cached
//! prompt tokens apart from the others).

/// A gauge of the common set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gauge {
    Running,
    Waiting,
    KvCacheUsage,
    /// A server's own hit-rate gauge, where it has no hit and lookup counters.
    PrefixHitRate,
}

/// A counter of the common set, as its increase over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    PromptTokens,
    GenerationTokens,
    Preemptions,
    PrefixQueries,
    PrefixHits,
}

/// A latency histogram of the common set, in seconds on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hist {
    Ttft,
    Itl,
    E2e,
    Queue,
}

pub(crate) const GAUGES: [(Gauge, &str, &[&[&str]]); 4] = [
    (
        Gauge::Running,
        "running",
        &[
            &["vllm:num_requests_running"],
            &["sglang:num_running_reqs"],
            &["llamacpp:requests_processing"],
            &["tgi_batch_current_size"],
        ],
    ),
    (
        Gauge::Waiting,
        "waiting",
        &[
            &["vllm:num_requests_waiting"],
            &["sglang:num_queue_reqs"],
            &["llamacpp:requests_deferred"],
            &["tgi_queue_size"],
        ],
    ),
    (
        Gauge::KvCacheUsage,
        "kv_cache_usage",
        &[
            &["vllm:kv_cache_usage_perc"],
            &["vllm:gpu_cache_usage_perc"],
            &["sglang:token_usage"],
            &["llamacpp:kv_cache_usage_ratio"],
        ],
    ),
    (
        Gauge::PrefixHitRate,
        "prefix_cache_hit_rate",
        &[
            &["vllm:gpu_prefix_cache_hit_rate"],
            &["sglang:cache_hit_rate"],
        ],
    ),
];

pub(crate) const COUNTERS: [(Counter, &str, &[&[&str]]); 5] = [
    (
        Counter::PromptTokens,
        "prompt_tokens",
        &[
            &["vllm:prompt_tokens_total"],
            &["sglang:prompt_tokens_total"],
            &[
                "llamacpp:prompt_tokens_total",
                "llamacpp:prompt_tokens_cached_total",
            ],
            &["tgi_request_input_length_sum"],
        ],
    ),
    (
        Counter::GenerationTokens,
        "generation_tokens",
        &[
            &["vllm:generation_tokens_total"],
            &["sglang:generation_tokens_total"],
            &["llamacpp:tokens_predicted_total"],
            &["tgi_request_generated_tokens_sum"],
        ],
    ),
    (
        Counter::Preemptions,
        "preemptions",
        &[&["vllm:num_preemptions_total"]],
    ),
    (
        Counter::PrefixQueries,
        "prefix_cache_queries",
        &[
            &["vllm:prefix_cache_queries_total"],
            &["vllm:prefix_cache_queries"],
            &[
                "llamacpp:prompt_tokens_total",
                "llamacpp:prompt_tokens_cached_total",
            ],
        ],
    ),
    (
        Counter::PrefixHits,
        "prefix_cache_hits",
        &[
            &["vllm:prefix_cache_hits_total"],
            &["vllm:prefix_cache_hits"],
            &["llamacpp:prompt_tokens_cached_total"],
        ],
    ),
];

/// Histogram base names (`_bucket`, `_sum`, `_count` follow), in order of preference.
pub(crate) const HISTOGRAMS: [(Hist, &[&str]); 4] = [
    (
        Hist::Ttft,
        &[
            "vllm:time_to_first_token_seconds",
            "sglang:time_to_first_token_seconds",
        ],
    ),
    (
        Hist::Itl,
        &[
            "vllm:inter_token_latency_seconds",
            "vllm:time_per_output_token_seconds",
            "sglang:inter_token_latency_seconds",
            "sglang:time_per_output_token_seconds",
            "tgi_request_mean_time_per_token_duration",
        ],
    ),
    (
        Hist::E2e,
        &[
            "vllm:e2e_request_latency_seconds",
            "sglang:e2e_request_latency_seconds",
            "tgi_request_duration",
        ],
    ),
    (
        Hist::Queue,
        &[
            "vllm:request_queue_time_seconds",
            "tgi_request_queue_duration",
        ],
    ),
];

/// Whose naming a metric name is.
pub(crate) fn naming(name: &str) -> Option<&'static str> {
    [
        ("vllm:", "vllm"),
        ("sglang:", "sglang"),
        ("llamacpp:", "llamacpp"),
        ("tgi_", "tgi"),
    ]
    .into_iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map(|(_, naming)| naming)
}

/// Every name the table reads (histograms by their base name), for telling unmapped ones.
pub(crate) fn is_mapped(name: &str) -> bool {
    let listed = |alternatives: &[&[&str]]| alternatives.iter().any(|names| names.contains(&name));
    GAUGES.iter().any(|(_, _, a)| listed(a))
        || COUNTERS.iter().any(|(_, _, a)| listed(a))
        || HISTOGRAMS.iter().any(|(_, bases)| {
            bases.iter().any(|base| {
                name.strip_prefix(base)
                    .is_some_and(|suffix| matches!(suffix, "_bucket" | "_sum" | "_count"))
            })
        })
}
