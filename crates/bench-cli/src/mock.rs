//! The mock server from the command line (`llm-bench mock-server`); the embedded target of a
//! run is bench-runner's.

use std::io::Write;
use std::path::PathBuf;

use bench_mock::{DelayDistribution, FaultSpec, MockConfig, MockServer};
use clap::ValueEnum;

use crate::{exit_codes, Failure};

/// `llm-bench mock-server`: every knob of the mock, with its default.
#[derive(Debug, clap::Args)]
pub(crate) struct MockServerArgs {
    /// Address to listen on.
    #[arg(long, default_value_t = MockConfig::default().host)]
    host: String,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Model name listed by GET /v1/models (requests for any name are served).
    #[arg(long, default_value_t = MockConfig::default().model)]
    model: String,
    /// More model names GET /v1/models lists after --model (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    extra_models: Vec<String>,
    /// Time to first token after admission, before prefill, in ms.
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().ttft_ms)]
    ttft_ms: f64,
    /// Distribution of the TTFT.
    #[arg(long, value_enum, default_value_t = Dist::Constant)]
    ttft_distribution: Dist,
    /// Standard deviation of the TTFT (normal, lognormal), in ms.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    ttft_stdev_ms: f64,
    /// Prefill time per prompt token, added to the TTFT, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    prefill_ms_per_token: f64,
    /// Distribution of the per-token prefill time.
    #[arg(long, value_enum, default_value_t = Dist::Constant)]
    prefill_distribution: Dist,
    /// Standard deviation of the per-token prefill time, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    prefill_stdev_ms: f64,
    /// Gap between tokens at an empty batch, in ms.
    #[arg(long, value_name = "MS", default_value_t = MockConfig::default().itl_ms)]
    itl_ms: f64,
    /// Distribution of the inter-token gap.
    #[arg(long, value_enum, default_value_t = Dist::Constant)]
    itl_distribution: Dist,
    /// Standard deviation of the inter-token gap, in ms.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    itl_stdev_ms: f64,
    /// Output length when a request sets no max_tokens, or sets more without ignore_eos.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().output_tokens)]
    output_tokens: u32,
    /// Standard deviation of that length (normal, at least 1).
    #[arg(long, default_value_t = 0.0)]
    output_tokens_stdev: f64,
    /// A reasoning model: the first N output tokens of a chat response are reasoning, in
    /// delta.reasoning_content (as vLLM streams them), before the answer.
    #[arg(long, value_name = "N", default_value_t = 0)]
    reasoning_tokens: u32,
    /// Sequences decoded at once; later requests wait in FIFO order.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().max_batch)]
    max_batch: u32,
    /// Inter-token gap growth with the batch: itl * (1 + slowdown * active / max_batch).
    #[arg(long, default_value_t = 0.0)]
    slowdown: f64,
    /// Requests allowed to wait for a slot; more are refused (default: unbounded).
    #[arg(long, value_name = "N")]
    max_queue: Option<u32>,
    /// Status of a full-queue refusal: 429 or 503.
    #[arg(long, default_value_t = MockConfig::default().queue_full_status)]
    queue_full_status: u16,
    /// A Hugging Face tokenizer.json (or a directory with one) to count prompt tokens.
    #[arg(long, value_name = "PATH")]
    tokenizer: Option<PathBuf>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = MockConfig::default().seed)]
    seed: u64,
    /// A fault: KIND[:p=P|every=N][,after=TOKENS][,seconds=S]; repeatable. Kinds: http_429,
    /// http_500, http_503, reset_before_headers, close_mid_stream, malformed_chunk,
    /// missing_done, stall, error_in_stream.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<String>,
    /// Write the ground truth of every request to FILE as JSON lines.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Ground-truth records kept in memory for GET /mock/ground-truth.
    #[arg(long, value_name = "N", default_value_t = MockConfig::default().record_limit)]
    record_limit: usize,
    /// Record when each token of a streamed response was written (token_times_unix_us in the
    /// ground truth), for the gaps between tokens as the server sent them.
    #[arg(long)]
    token_times: bool,
    /// Serve GET /metrics (the in-flight gauges); `--metrics false` answers 404, like a server
    /// without a Prometheus endpoint.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    metrics: bool,
    /// Serve HTTPS only, with this PEM certificate chain (give --tls-key too).
    #[arg(long, value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: require a client certificate signed by this PEM CA certificate.
    #[arg(long, value_name = "PATH")]
    tls_client_ca: Option<PathBuf>,
    /// Serve HTTP/2 as well as HTTP/1.1 (over TLS by ALPN, h2 first; over plain HTTP with
    /// prior knowledge); `--http2 false` serves HTTP/1.1 only.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    http2: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Dist {
    Constant,
    Normal,
    Lognormal,
    Exponential,
}

impl From<Dist> for DelayDistribution {
    fn from(d: Dist) -> Self {
        match d {
            Dist::Constant => DelayDistribution::Constant,
            Dist::Normal => DelayDistribution::Normal,
            Dist::Lognormal => DelayDistribution::Lognormal,
            Dist::Exponential => DelayDistribution::Exponential,
        }
    }
}

impl MockServerArgs {
    fn config(&self) -> Result<MockConfig, Failure> {
        let faults = self
            .faults
            .iter()
            .map(|spec| FaultSpec::parse(spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::bad_input)?;
        let config = MockConfig {
            host: self.host.clone(),
            port: self.port,
            model: self.model.clone(),
            extra_models: self.extra_models.clone(),
            ttft_ms: self.ttft_ms,
            ttft_distribution: self.ttft_distribution.into(),
            ttft_stdev_ms: self.ttft_stdev_ms,
            prefill_ms_per_token: self.prefill_ms_per_token,
            prefill_distribution: self.prefill_distribution.into(),
            prefill_stdev_ms: self.prefill_stdev_ms,
            itl_ms: self.itl_ms,
            itl_distribution: self.itl_distribution.into(),
            itl_stdev_ms: self.itl_stdev_ms,
            output_tokens: self.output_tokens,
            output_tokens_stdev: self.output_tokens_stdev,
            reasoning_tokens: self.reasoning_tokens,
            max_batch: self.max_batch,
            slowdown: self.slowdown,
            max_queue: self.max_queue,
            queue_full_status: self.queue_full_status,
            tokenizer: self.tokenizer.clone(),
            seed: self.seed,
            faults,
            log: self.log.clone(),
            record_limit: self.record_limit,
            token_times: self.token_times,
            metrics: self.metrics,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            http2: self.http2,
        };
        config.validate().map_err(Failure::bad_input)?;
        Ok(config)
    }
}

/// Serves until SIGINT or SIGTERM, then prints the server's counters.
pub(crate) fn serve(args: &MockServerArgs, stdout: &mut dyn Write) -> Result<u8, Failure> {
    let config = args.config()?;
    let runtime = bench_runner::runtime().map_err(Failure::run_failed)?;
    runtime.block_on(async {
        let server = MockServer::start(config)
            .await
            .map_err(Failure::run_failed)?;
        let _ = writeln!(stdout, "bench-mock listening on {}", server.base_url());
        let _ = stdout.flush();
        if let Err(error) = crate::signals::wait_for_signal().await {
            tracing::warn!("cannot wait for signals ({error}); stopping");
        }
        let stats = server.stats();
        server.shutdown().await;
        let _ = writeln!(
            stdout,
            "bench-mock stopped: {} requests, {} tokens, token lateness p50 {:.1} us, p99 {:.1} us",
            stats.requests,
            stats.tokens_sent,
            stats.token_lateness_us.p50,
            stats.token_lateness_us.p99
        );
        Ok(exit_codes::OK)
    })
}
