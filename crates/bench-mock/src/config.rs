//! The mock's knobs: timing, load model, tokenizer, faults, ground-truth log.
//!
//! The same struct is read from `[target.mock]` in an llm-bench config and built from the
//! `llm-bench mock-server` flags. Times are in milliseconds unless the name says otherwise.

use std::path::PathBuf;

use rand::Rng;
use rand_distr::{Distribution as _, Exp, LogNormal, Normal};
use serde::{Deserialize, Serialize};

use crate::MockError;

/// Everything the mock can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockConfig {
    /// Address to listen on; loopback by default.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// The model name `GET /v1/models` lists. Requests for any model name are served.
    pub model: String,
    /// More names `GET /v1/models` lists after `model`, as a server hosting several models
    /// (or LoRA adapters) does.
    pub extra_models: Vec<String>,
    /// Time to first token before prefill, from admission (queue wait comes before it).
    pub ttft_ms: f64,
    /// Distribution of `ttft_ms`.
    pub ttft_distribution: DelayDistribution,
    /// Standard deviation of `ttft_ms` (normal and lognormal).
    pub ttft_stdev_ms: f64,
    /// Prefill time per prompt token, added to the time to first token.
    pub prefill_ms_per_token: f64,
    /// Distribution of `prefill_ms_per_token`.
    pub prefill_distribution: DelayDistribution,
    /// Standard deviation of `prefill_ms_per_token`.
    pub prefill_stdev_ms: f64,
    /// Gap between consecutive tokens at an empty batch.
    pub itl_ms: f64,
    /// Distribution of `itl_ms`.
    pub itl_distribution: DelayDistribution,
    /// Standard deviation of `itl_ms`.
    pub itl_stdev_ms: f64,
    /// Output length when the request gives no `max_tokens` (or does not set `ignore_eos` and
    /// asks for more): the length at which the mock "emits EOS".
    pub output_tokens: u32,
    /// Standard deviation of that natural length (normal, at least 1).
    pub output_tokens_stdev: f64,
    /// A reasoning model: the first this many output tokens of a chat response are
    /// reasoning, streamed in `delta.reasoning_content` as vLLM's reasoning parsers do, before
    /// the answer in `delta.content`. They count in `max_tokens` and `completion_tokens`.
    pub reasoning_tokens: u32,
    /// Sequences decoded at once; later requests wait first-in first-out.
    pub max_batch: u32,
    /// How much the inter-token gap grows with the batch:
    /// `itl = itl_ms * (1 + slowdown * active / max_batch)`.
    pub slowdown: f64,
    /// Requests allowed to wait for a batch slot; beyond it they are refused. None: unbounded.
    pub max_queue: Option<u32>,
    /// Status of a refusal for a full queue: 429 or 503.
    pub queue_full_status: u16,
    /// A Hugging Face `tokenizer.json` (or a directory with one) to count prompt tokens; without
    /// one, prompt tokens are approximated as one per 4 bytes of prompt text, rounded up.
    pub tokenizer: Option<PathBuf>,
    /// Seed of every random draw (delays, lengths, faults).
    pub seed: u64,
    /// Faults to inject, tried in order; the first that fires applies to a request.
    pub faults: Vec<FaultSpec>,
    /// Append the ground truth of every request to this file as JSON lines.
    pub log: Option<PathBuf>,
    /// Ground-truth records kept in memory for `GET /mock/ground-truth` (the log file keeps all).
    pub record_limit: usize,
    /// Record when each content token of a streamed response was written
    /// (`token_times_unix_us`), for the gaps between tokens as the server sent them. Off by
    /// default: a record then grows by one number per token.
    pub token_times: bool,
    /// Serve `GET /metrics` (the in-flight gauges); off, it answers 404 like a server without
    /// a Prometheus endpoint.
    pub metrics: bool,
    /// A PEM certificate chain (the server's certificate first); with `tls_key`, the mock
    /// serves HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// A PEM CA certificate: clients must present a certificate it signed (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Serve HTTP/2 as well as HTTP/1.1: over TLS, offer `h2` before `http/1.1` by ALPN; over
    /// plain HTTP, accept prior-knowledge h2c. Off, HTTP/1.1 only.
    pub http2: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 0,
            model: "mock-model".to_owned(),
            extra_models: Vec::new(),
            ttft_ms: 20.0,
            ttft_distribution: DelayDistribution::Constant,
            ttft_stdev_ms: 0.0,
            prefill_ms_per_token: 0.0,
            prefill_distribution: DelayDistribution::Constant,
            prefill_stdev_ms: 0.0,
            itl_ms: 5.0,
            itl_distribution: DelayDistribution::Constant,
            itl_stdev_ms: 0.0,
            output_tokens: 16,
            output_tokens_stdev: 0.0,
            reasoning_tokens: 0,
            max_batch: 256,
            slowdown: 0.0,
            max_queue: None,
            queue_full_status: 429,
            tokenizer: None,
            seed: 42,
            faults: Vec::new(),
            log: None,
            record_limit: 1_000_000,
            token_times: false,
            metrics: true,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            http2: true,
        }
    }
}

/// How a delay varies from request to request (or token to token).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayDistribution {
    /// Always the mean.
    #[default]
    Constant,
    /// Normal with the given standard deviation, clamped at zero.
    Normal,
    /// Lognormal with the given mean and standard deviation.
    Lognormal,
    /// Exponential with the given mean (the standard deviation is not used).
    Exponential,
}

/// A ready-to-sample delay in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delay {
    Constant(f64),
    Normal(Normal<f64>),
    Lognormal(LogNormal<f64>),
    Exponential(Exp<f64>),
}

impl Delay {
    fn new(
        key: &str,
        mean: f64,
        distribution: DelayDistribution,
        stdev: f64,
    ) -> Result<Self, MockError> {
        let bad = |message: String| MockError::Config {
            key: key.to_owned(),
            message,
        };
        if !(mean.is_finite() && mean >= 0.0) {
            return Err(bad(format!("{mean} must be zero or more milliseconds")));
        }
        if !(stdev.is_finite() && stdev >= 0.0) {
            return Err(bad(format!(
                "standard deviation {stdev} must be zero or more"
            )));
        }
        Ok(match distribution {
            DelayDistribution::Constant => Delay::Constant(mean),
            _ if mean == 0.0 => Delay::Constant(0.0),
            DelayDistribution::Normal => {
                Delay::Normal(Normal::new(mean, stdev).map_err(|e| bad(e.to_string()))?)
            }
            DelayDistribution::Lognormal => {
                // Parameters of the underlying normal that give this mean and deviation.
                let sigma2 = (1.0 + (stdev / mean).powi(2)).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                Delay::Lognormal(LogNormal::new(mu, sigma2.sqrt()).map_err(|e| bad(e.to_string()))?)
            }
            DelayDistribution::Exponential => {
                Delay::Exponential(Exp::new(1.0 / mean).map_err(|e| bad(e.to_string()))?)
            }
        })
    }

    /// One draw, in milliseconds, never negative.
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> f64 {
        let value = match self {
            Delay::Constant(v) => *v,
            Delay::Normal(d) => d.sample(rng),
            Delay::Lognormal(d) => d.sample(rng),
            Delay::Exponential(d) => d.sample(rng),
        };
        value.max(0.0)
    }
}

/// One fault to inject, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Chance per request, in [0, 1], drawn from the seeded generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Every n-th request (the n-th, 2n-th, ... in arrival order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Mid-stream faults: after how many content tokens (default 1).
    #[serde(default = "default_after_tokens")]
    pub after_tokens: u32,
    /// `stall`: how long; `http_429`/`http_503`: the Retry-After value (default 1).
    #[serde(default = "default_seconds")]
    pub seconds: f64,
}

fn default_after_tokens() -> u32 {
    1
}

fn default_seconds() -> f64 {
    1.0
}

/// The faults the mock can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 429 with `Retry-After` and an OpenAI-style error body.
    #[serde(rename = "http_429")]
    Http429,
    /// HTTP 500 with an error body.
    #[serde(rename = "http_500")]
    Http500,
    /// HTTP 503 with `Retry-After` and an error body.
    #[serde(rename = "http_503")]
    Http503,
    /// The connection is closed before any response byte.
    ResetBeforeHeaders,
    /// The connection is closed mid-stream after `after_tokens` tokens.
    CloseMidStream,
    /// A chunk of broken JSON is sent after `after_tokens` tokens; the stream goes on.
    MalformedChunk,
    /// The stream ends without `data: [DONE]`.
    MissingDone,
    /// The stream stalls for `seconds` after `after_tokens` tokens.
    Stall,
    /// An `{"error": ...}` object is sent after `after_tokens` tokens, then `[DONE]`.
    ErrorInStream,
}

impl FaultKind {
    /// Every kind, with its name.
    pub const ALL: [(FaultKind, &'static str); 9] = [
        (FaultKind::Http429, "http_429"),
        (FaultKind::Http500, "http_500"),
        (FaultKind::Http503, "http_503"),
        (FaultKind::ResetBeforeHeaders, "reset_before_headers"),
        (FaultKind::CloseMidStream, "close_mid_stream"),
        (FaultKind::MalformedChunk, "malformed_chunk"),
        (FaultKind::MissingDone, "missing_done"),
        (FaultKind::Stall, "stall"),
        (FaultKind::ErrorInStream, "error_in_stream"),
    ];

    /// The name used in configs, flags and the ground truth.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .expect("every kind is listed in ALL")
    }
}

impl FaultSpec {
    /// Parses the flag form `KIND[:key=value,...]`, keys `p` (probability), `every`, `after`
    /// (tokens) and `seconds`; e.g. `http_500:p=0.05` or `stall:every=10,after=3,seconds=2`.
    pub fn parse(text: &str) -> Result<Self, MockError> {
        let bad = |message: String| MockError::Config {
            key: "--fault".to_owned(),
            message: format!("`{text}`: {message}"),
        };
        let (name, params) = text.split_once(':').unwrap_or((text, ""));
        let names: Vec<&str> = FaultKind::ALL.iter().map(|(_, n)| *n).collect();
        let kind = FaultKind::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                bad(format!(
                    "unknown fault `{name}`; faults: {}",
                    names.join(", ")
                ))
            })?;
        let mut spec = FaultSpec {
            kind,
            probability: None,
            every: None,
            after_tokens: default_after_tokens(),
            seconds: default_seconds(),
        };
        for pair in params.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("`{pair}` is not key=value")))?;
            let number = || {
                value
                    .parse::<f64>()
                    .map_err(|_| bad(format!("`{key}={value}`: not a number")))
            };
            match key {
                "p" | "probability" => spec.probability = Some(number()?),
                "every" => {
                    spec.every = Some(
                        value
                            .parse()
                            .map_err(|_| bad(format!("`every={value}`: not a whole number")))?,
                    )
                }
                "after" | "after_tokens" => {
                    spec.after_tokens = value
                        .parse()
                        .map_err(|_| bad(format!("`after={value}`: not a whole number")))?
                }
                "seconds" => spec.seconds = number()?,
                other => {
                    return Err(bad(format!(
                        "unknown parameter `{other}`; parameters: p, every, after, seconds"
                    )))
                }
            }
        }
        spec.validate().map_err(|e| bad(e.to_string()))?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), MockError> {
        let bad = |message: String| MockError::Config {
            key: format!("faults.{}", self.kind.name()),
            message,
        };
        match (self.probability, self.every) {
            (None, None) => {
                return Err(bad(
                    "give `probability` (p) or `every`, or the fault never fires".to_owned(),
                ))
            }
            (Some(p), _) if !(0.0..=1.0).contains(&p) => {
                return Err(bad(format!("probability {p} is not in [0, 1]")))
            }
            (_, Some(0)) => return Err(bad("`every` must be at least 1".to_owned())),
            _ => {}
        }
        if !(self.seconds.is_finite() && self.seconds >= 0.0) {
            return Err(bad(format!(
                "seconds {} must be zero or more",
                self.seconds
            )));
        }
        Ok(())
    }
}

/// The validated, ready-to-use form of a [`MockConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Model {
    pub(crate) ttft: Delay,
    pub(crate) prefill_per_token: Delay,
    pub(crate) itl: Delay,
    pub(crate) output_tokens: Option<Normal<f64>>,
}

impl MockConfig {
    /// Checks every knob without starting anything; the errors name the knob.
    pub fn validate(&self) -> Result<(), MockError> {
        self.model().map(|_| ())
    }

    /// Checks every knob; the errors name the knob.
    pub(crate) fn model(&self) -> Result<Model, MockError> {
        let bad = |key: &str, message: String| MockError::Config {
            key: key.to_owned(),
            message,
        };
        if self.max_batch == 0 {
            return Err(bad(
                "max_batch",
                "0 would serve nothing; use 1 or more".to_owned(),
            ));
        }
        if !(self.slowdown.is_finite() && self.slowdown >= 0.0) {
            return Err(bad(
                "slowdown",
                format!("{} must be zero or more", self.slowdown),
            ));
        }
        if !matches!(self.queue_full_status, 429 | 503) {
            return Err(bad(
                "queue_full_status",
                format!("{} is not 429 or 503", self.queue_full_status),
            ));
        }
        if self.output_tokens == 0 {
            return Err(bad("output_tokens", "must be at least 1".to_owned()));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(bad(
                    "tls_key",
                    "`tls_cert` is set: give its PEM private key too".to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "tls_cert",
                    "`tls_key` is set: give its PEM certificate chain too".to_owned(),
                ))
            }
            _ => {}
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(bad(
                "tls_client_ca",
                "client certificates need HTTPS: give `tls_cert` and `tls_key` too".to_owned(),
            ));
        }
        for fault in &self.faults {
            fault.validate()?;
        }
        let output_tokens = if self.output_tokens_stdev > 0.0 {
            Some(
                Normal::new(f64::from(self.output_tokens), self.output_tokens_stdev)
                    .map_err(|e| bad("output_tokens_stdev", e.to_string()))?,
            )
        } else if self.output_tokens_stdev == 0.0 {
            None
        } else {
            return Err(bad(
                "output_tokens_stdev",
                format!("{} must be zero or more", self.output_tokens_stdev),
            ));
        };
        Ok(Model {
            ttft: Delay::new(
                "ttft_ms",
                self.ttft_ms,
                self.ttft_distribution,
                self.ttft_stdev_ms,
            )?,
            prefill_per_token: Delay::new(
                "prefill_ms_per_token",
                self.prefill_ms_per_token,
                self.prefill_distribution,
                self.prefill_stdev_ms,
            )?,
            itl: Delay::new(
                "itl_ms",
                self.itl_ms,
                self.itl_distribution,
                self.itl_stdev_ms,
            )?,
            output_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fault_flags_parse_and_bad_ones_are_explained() {
        let f = FaultSpec::parse("stall:every=10,after=3,seconds=2").unwrap();
        assert_eq!(
            (f.kind, f.every, f.after_tokens, f.seconds),
            (FaultKind::Stall, Some(10), 3, 2.0)
        );
        let f = FaultSpec::parse("http_500:p=0.05").unwrap();
        assert_eq!((f.kind, f.probability), (FaultKind::Http500, Some(0.05)));
        let message = |s: &str| FaultSpec::parse(s).unwrap_err().to_string();
        assert!(
            message("http_501:p=1").contains("unknown fault `http_501`; faults: http_429"),
            "{}",
            message("http_501:p=1")
        );
        assert!(message("stall").contains("give `probability` (p) or `every`"));
        assert!(message("stall:p=2").contains("probability 2 is not in [0, 1]"));
        assert!(message("stall:q=2").contains("unknown parameter `q`"));
    }

    #[test]
    fn lognormal_delays_keep_their_mean_and_nothing_is_negative() {
        let d = Delay::new("x", 10.0, DelayDistribution::Lognormal, 5.0).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let n = 200_000;
        let mean = (0..n).map(|_| d.sample(&mut rng)).sum::<f64>() / f64::from(n);
        assert!((mean - 10.0).abs() < 0.1, "{mean}");
        let d = Delay::new("x", 1.0, DelayDistribution::Normal, 5.0).unwrap();
        assert!((0..10_000).all(|_| d.sample(&mut rng) >= 0.0));
        assert!(Delay::new("itl_ms", -1.0, DelayDistribution::Constant, 0.0).is_err());
    }
}
