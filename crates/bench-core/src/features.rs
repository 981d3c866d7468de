//! What a config asks of an engine beyond the basics every engine does (a target, a model, a
//! profile kind and a data kind, which [`crate::Capabilities`] lists apart).
//!
//! [`features`] reads every field of the config by exhaustive destructuring, so a new config
//! key does not compile until it is either classified here as a [`Feature`] or named as one
//! that every engine honours. An engine lists the features it supports; any other feature a
//! config uses is refused with one generic message that names the key and the engines that
//! do support it ([`crate::Capabilities::check`]).

use std::fmt;

use crate::config::{
    Api, Config, Constraints, Data, Profile, RateStrategy, SaturationMode, Spacing, Target,
    Timeouts, Tls, Transient,
};

/// An optional thing a config can ask for, by the key that asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// `target.api = "completions"`.
    CompletionsApi,
    /// `target.headers`.
    Headers,
    /// `target.timeouts.connect_seconds` other than the default.
    ConnectTimeout,
    /// `target.timeouts.read_seconds` other than the default.
    ReadTimeout,
    /// `target.timeouts.request_seconds`.
    RequestTimeout,
    /// `target.tls.ca_file`.
    CaFile,
    /// `target.tls.client_cert` and `client_key` (mutual TLS).
    ClientCertificate,
    /// `target.tls.server_name`.
    TlsServerName,
    /// `target.tls.insecure_skip_verify = true`.
    InsecureSkipVerify,
    /// `target.http2 = false`.
    Http1Only,
    /// `target.proxy_from_env = false`.
    NoProxyFromEnv,
    /// `profile.rampup_seconds`.
    Rampup,
    /// `profile.max_concurrency` on a rate profile.
    MaxConcurrency,
    /// `profile.strategy = "poisson"` in a sweep.
    SweepPoisson,
    /// `profile.spacing = "geometric"` in a sweep.
    GeometricSpacing,
    /// `data.kind = "trace"` replayed by `profile.kind = "replay"`, with `speedup`,
    /// `start_seconds` and `block_tokens`.
    TraceReplay,
    /// `profile.burstiness`: gamma arrivals (`kind = "gamma"`, or a sweep's `strategy = "gamma"`).
    GammaArrivals,
    /// `constraints.max_seconds`.
    MaxSeconds,
    /// `constraints.max_requests`.
    MaxRequests,
    /// `constraints.max_errors`.
    MaxErrors,
    /// `constraints.max_error_rate`.
    MaxErrorRate,
    /// `constraints.error_rate_window`.
    ErrorRateWindow,
    /// `constraints.over_saturation` in a mode other than `off`.
    OverSaturation,
    /// `constraints.interrupt_grace_seconds`.
    InterruptGrace,
    /// `warmup = { fraction = ... }`.
    WarmupFraction,
    /// `warmup = { seconds = ... }`.
    WarmupSeconds,
    /// `warmup = { requests = ... }`.
    WarmupRequests,
    /// `cooldown = { fraction = ... }`.
    CooldownFraction,
    /// `cooldown = { seconds = ... }`.
    CooldownSeconds,
    /// `cooldown = { requests = ... }`.
    CooldownRequests,
    /// `[slo]`.
    Slo,
    /// `data.tokenizer`.
    Tokenizer,
    /// `data.approximate = true`, or synthetic data without a tokenizer.
    ApproximateTokens,
    /// `data.prompt_tokens_stdev` or `output_tokens_stdev`.
    LengthStdev,
    /// `data.*_tokens_min` or `*_tokens_max`.
    LengthBounds,
    /// `data.prefix_tokens`.
    PrefixTokens,
    /// `data.samples`.
    Samples,
    /// `data.prompt_column`.
    PromptColumn,
    /// More than one workload (`data.scenarios`).
    ManyWorkloads,
    /// `profile.kind = "search"` (the SLO search, with `[profile.search]`).
    SloSearch,
    /// Multi-turn sessions (`data.turns`, `data.conversations`, `data.think_*`).
    Sessions,
    /// `[target.metrics]` with a mode other than `off`: the server's `/metrics` scraped.
    ServerMetrics,
    /// `[shard]`: one share of a run split over several processes.
    Shard,
}

impl Feature {
    /// The config key (or setting) that asks for it, as an error message names it.
    pub fn key(self) -> &'static str {
        match self {
            Self::CompletionsApi => "target.api = \"completions\"",
            Self::Headers => "target.headers",
            Self::ConnectTimeout => "target.timeouts.connect_seconds",
            Self::ReadTimeout => "target.timeouts.read_seconds",
            Self::RequestTimeout => "target.timeouts.request_seconds",
            Self::CaFile => "target.tls.ca_file",
            Self::ClientCertificate => "target.tls.client_cert (mutual TLS)",
            Self::TlsServerName => "target.tls.server_name",
            Self::InsecureSkipVerify => "target.tls.insecure_skip_verify",
            Self::Http1Only => "target.http2 = false",
            Self::NoProxyFromEnv => "target.proxy_from_env = false",
            Self::Rampup => "profile.rampup_seconds",
            Self::MaxConcurrency => "profile.max_concurrency",
            Self::SweepPoisson => "profile.strategy = \"poisson\"",
            Self::GeometricSpacing => "profile.spacing = \"geometric\"",
            Self::GammaArrivals => "profile.burstiness (gamma arrivals)",
            Self::TraceReplay => "profile.kind = \"replay\" (trace replay)",
            Self::MaxSeconds => "constraints.max_seconds",
            Self::MaxRequests => "constraints.max_requests",
            Self::MaxErrors => "constraints.max_errors",
            Self::MaxErrorRate => "constraints.max_error_rate",
            Self::ErrorRateWindow => "constraints.error_rate_window",
            Self::OverSaturation => "constraints.over_saturation",
            Self::InterruptGrace => "constraints.interrupt_grace_seconds",
            Self::WarmupFraction => "warmup in a fraction",
            Self::WarmupSeconds => "warmup in seconds",
            Self::WarmupRequests => "warmup in requests",
            Self::CooldownFraction => "cooldown in a fraction",
            Self::CooldownSeconds => "cooldown in seconds",
            Self::CooldownRequests => "cooldown in requests",
            Self::Slo => "[slo]",
            Self::Tokenizer => "data.tokenizer",
            Self::ApproximateTokens => "data without a tokenizer (approximate prompt lengths)",
            Self::LengthStdev => "data.*_tokens_stdev",
            Self::LengthBounds => "data.*_tokens_min / _max",
            Self::PrefixTokens => "data.prefix_tokens",
            Self::Samples => "data.samples",
            Self::PromptColumn => "data.prompt_column",
            Self::ManyWorkloads => "data.scenarios (more than one workload)",
            Self::SloSearch => "profile.kind = \"search\" (the SLO search)",
            Self::Sessions => "data.turns / data.conversations (multi-turn sessions)",
            Self::ServerMetrics => "target.metrics (scraping the server's metrics)",
            Self::Shard => "shard (one share of a sharded run)",
        }
    }

    /// Every feature, in order.
    pub const ALL: [Feature; 43] = [
        Self::CompletionsApi,
        Self::Headers,
        Self::ConnectTimeout,
        Self::ReadTimeout,
        Self::RequestTimeout,
        Self::CaFile,
        Self::ClientCertificate,
        Self::TlsServerName,
        Self::InsecureSkipVerify,
        Self::Http1Only,
        Self::NoProxyFromEnv,
        Self::Rampup,
        Self::MaxConcurrency,
        Self::SweepPoisson,
        Self::GeometricSpacing,
        Self::TraceReplay,
        Self::GammaArrivals,
        Self::MaxSeconds,
        Self::MaxRequests,
        Self::MaxErrors,
        Self::MaxErrorRate,
        Self::ErrorRateWindow,
        Self::OverSaturation,
        Self::InterruptGrace,
        Self::WarmupFraction,
        Self::WarmupSeconds,
        Self::WarmupRequests,
        Self::CooldownFraction,
        Self::CooldownSeconds,
        Self::CooldownRequests,
        Self::Slo,
        Self::Tokenizer,
        Self::ApproximateTokens,
        Self::LengthStdev,
        Self::LengthBounds,
        Self::PrefixTokens,
        Self::Samples,
        Self::PromptColumn,
        Self::ManyWorkloads,
        Self::SloSearch,
        Self::Sessions,
        Self::ServerMetrics,
        Self::Shard,
    ];
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The features `config` uses, in [`Feature::ALL`] order.
pub fn features(config: &Config) -> Vec<Feature> {
    // Every field is named: a new one must be classified before this compiles.
    let Config {
        benchmark_engine: _, // picks the engine
        seed: _,             // every engine seeds what it draws, or draws nothing
        target,
        profile,
        constraints,
        warmup,
        cooldown,
        data,
        slo,
        outputs: _, // written by the front end
        engines: _, // each engine's own table
        shard,
    } = config;
    let mut used = Vec::new();
    of_target(target, &mut used);
    of_profile(profile, &mut used);
    of_constraints(constraints, &mut used);
    let transient = |t: &Option<Transient>, [fraction, seconds, requests]: [Feature; 3]| match t {
        Some(Transient::Fraction(_)) => Some(fraction),
        Some(Transient::Seconds(_)) => Some(seconds),
        Some(Transient::Requests(_)) => Some(requests),
        None => None,
    };
    used.extend(transient(
        warmup,
        [
            Feature::WarmupFraction,
            Feature::WarmupSeconds,
            Feature::WarmupRequests,
        ],
    ));
    used.extend(transient(
        cooldown,
        [
            Feature::CooldownFraction,
            Feature::CooldownSeconds,
            Feature::CooldownRequests,
        ],
    ));
    if slo.is_some() {
        used.push(Feature::Slo);
    }
    if shard.is_some() {
        used.push(Feature::Shard);
    }
    of_data(data, &mut used);
    used.sort();
    used.dedup();
    used
}

fn of_target(target: &Target, used: &mut Vec<Feature>) {
    let Target {
        kind: _,  // a server or the embedded mock, which every engine can measure
        url: _,   // every engine's
        model: _, // every engine's
        api,
        api_key_env: _, // every engine hands the key over
        headers,
        timeouts,
        tls,
        http2,
        proxy_from_env,
        mock: _, // the embedded mock's knobs, applied by the front end
        metrics,
    } = target;
    let Timeouts {
        connect_seconds,
        read_seconds,
        request_seconds,
    } = timeouts;
    let Tls {
        ca_file,
        client_cert,
        client_key,
        server_name,
        insecure_skip_verify,
    } = tls;
    let defaults = Timeouts::default();
    for (used_it, feature) in [
        (*api == Api::Completions, Feature::CompletionsApi),
        (!headers.is_empty(), Feature::Headers),
        (
            *connect_seconds != defaults.connect_seconds,
            Feature::ConnectTimeout,
        ),
        (*read_seconds != defaults.read_seconds, Feature::ReadTimeout),
        (request_seconds.is_some(), Feature::RequestTimeout),
        (ca_file.is_some(), Feature::CaFile),
        (
            client_cert.is_some() || client_key.is_some(),
            Feature::ClientCertificate,
        ),
        (server_name.is_some(), Feature::TlsServerName),
        (*insecure_skip_verify, Feature::InsecureSkipVerify),
        (!*http2, Feature::Http1Only),
        (
            metrics
                .as_ref()
                .is_some_and(|m| m.mode != crate::config::ScrapeMode::Off),
            Feature::ServerMetrics,
        ),
        (!*proxy_from_env, Feature::NoProxyFromEnv),
    ] {
        if used_it {
            used.push(feature);
        }
    }
}

fn of_profile(profile: &Profile, used: &mut Vec<Feature>) {
    let Profile {
        kind,       // checked against Capabilities::profiles too
        streams: _, // the concurrent profile's levels
        rates: _,   // the rate profiles' rates
        sweep_size: _,
        strategy,
        spacing,
        max_concurrency,
        rampup_seconds,
        burstiness,
        search, // the search's settings, read only by a search
        speedup,
        start_seconds,
    } = profile;
    // Besides Capabilities::profiles, so the refusal names the search as a feature.
    let searching = *kind == crate::config::ProfileKind::Search || search.is_some();
    for (used_it, feature) in [
        (searching, Feature::SloSearch),
        (rampup_seconds.is_some(), Feature::Rampup),
        (max_concurrency.is_some(), Feature::MaxConcurrency),
        (
            *strategy == Some(RateStrategy::Poisson),
            Feature::SweepPoisson,
        ),
        (
            *spacing == Some(Spacing::Geometric),
            Feature::GeometricSpacing,
        ),
        (burstiness.is_some(), Feature::GammaArrivals),
        (
            *kind == crate::config::ProfileKind::Replay
                || speedup.is_some()
                || start_seconds.is_some(),
            Feature::TraceReplay,
        ),
    ] {
        if used_it {
            used.push(feature);
        }
    }
}

fn of_constraints(constraints: &Constraints, used: &mut Vec<Feature>) {
    let Constraints {
        max_seconds,
        max_requests,
        max_errors,
        max_error_rate,
        error_rate_window,
        over_saturation,
        interrupt_grace_seconds,
    } = constraints;
    for (used_it, feature) in [
        (max_seconds.is_some(), Feature::MaxSeconds),
        (max_requests.is_some(), Feature::MaxRequests),
        (max_errors.is_some(), Feature::MaxErrors),
        (max_error_rate.is_some(), Feature::MaxErrorRate),
        (error_rate_window.is_some(), Feature::ErrorRateWindow),
        (
            over_saturation.is_some_and(|o| o.mode != SaturationMode::Off),
            Feature::OverSaturation,
        ),
        (interrupt_grace_seconds.is_some(), Feature::InterruptGrace),
    ] {
        if used_it {
            used.push(feature);
        }
    }
}

fn of_data(data: &Data, used: &mut Vec<Feature>) {
    let Data {
        kind,
        prompt_tokens: _, // the synthetic lengths every engine reads
        prompt_tokens_stdev,
        prompt_tokens_min,
        prompt_tokens_max,
        output_tokens: _,
        output_tokens_stdev,
        output_tokens_min,
        output_tokens_max,
        prefix_tokens,
        samples,
        tokenizer,
        approximate,
        scenario: _, // the scenario kind's one workload
        scenarios,
        path: _, // the file kind's file
        prompt_column,
        block_tokens,
        turns,
        turn_prompt_tokens,
        conversations,
        think_seconds,
        think_distribution,
    } = data;
    let synthetic = *kind == crate::config::DataKind::Synthetic;
    for (used_it, feature) in [
        (tokenizer.is_some(), Feature::Tokenizer),
        (
            *approximate == Some(true) || (synthetic && tokenizer.is_none()),
            Feature::ApproximateTokens,
        ),
        (
            prompt_tokens_stdev.is_some() || output_tokens_stdev.is_some(),
            Feature::LengthStdev,
        ),
        (
            prompt_tokens_min.is_some()
                || prompt_tokens_max.is_some()
                || output_tokens_min.is_some()
                || output_tokens_max.is_some(),
            Feature::LengthBounds,
        ),
        (prefix_tokens.is_some(), Feature::PrefixTokens),
        (samples.is_some(), Feature::Samples),
        (prompt_column.is_some(), Feature::PromptColumn),
        (
            *kind == crate::config::DataKind::Trace || block_tokens.is_some(),
            Feature::TraceReplay,
        ),
        (
            scenarios.as_ref().is_some_and(|s| s.len() > 1),
            Feature::ManyWorkloads,
        ),
        (
            turns.is_some()
                || turn_prompt_tokens.is_some()
                || conversations.is_some()
                || think_seconds.is_some()
                || think_distribution.is_some(),
            Feature::Sessions,
        ),
    ] {
        if used_it {
            used.push(feature);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFormat;

    fn used(text: &str) -> Vec<Feature> {
        let config = Config::load(
            &format!("[target]\nurl = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n{text}"),
            ConfigFormat::Toml,
            &[],
        )
        .unwrap();
        features(&config)
    }

    #[test]
    fn a_plain_config_uses_nothing_optional_but_its_limit() {
        assert_eq!(
            used("[profile]\nkind = \"synchronous\"\n[constraints]\nmax_requests = 5\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\noutput_tokens = 8\ntokenizer = \"/t\""),
            [Feature::MaxRequests, Feature::Tokenizer]
        );
    }

    #[test]
    fn each_key_shows_as_its_feature() {
        let features = used(
            "[target.headers]\nx-team = \"a\"\n\
             [profile]\nkind = \"constant\"\nrates = [5]\nmax_concurrency = 4\nrampup_seconds = 1\n\
             [constraints]\nmax_seconds = 5\nmax_error_rate = 0.1\n[warmup]\nseconds = 1\n[cooldown]\nfraction = 0.1\n\
             [slo]\nttft_ms = 100\n[data]\nkind = \"synthetic\"\nprompt_tokens = 8\nprompt_tokens_stdev = 2\noutput_tokens = 8\napproximate = true",
        );
        assert_eq!(
            features,
            [
                Feature::Headers,
                Feature::Rampup,
                Feature::MaxConcurrency,
                Feature::MaxSeconds,
                Feature::MaxErrorRate,
                Feature::WarmupSeconds,
                Feature::CooldownFraction,
                Feature::Slo,
                Feature::ApproximateTokens,
                Feature::LengthStdev,
            ]
        );
    }

    #[test]
    fn all_lists_every_feature_once_in_order() {
        let mut sorted = Feature::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, Feature::ALL);
    }
}
