//! The embedded mock target of a run (`target.kind = "mock"`), on a runtime of its own.

use std::path::PathBuf;

use bench_core::config::{Target, TargetKind};
use bench_core::Config;
use bench_mock::{MockConfig, MockServer};

use crate::RunError;

/// Ground-truth records the embedded mock keeps in memory unless `[target.mock]` says otherwise.
const EMBEDDED_RECORD_LIMIT: usize = 10_000;

/// The mock settings of a config's `target` (`[target.mock]` over the defaults, with the
/// config's seed, model name and tokenizer), or None when the target is a server.
pub fn embedded_config(config: &Config) -> Result<Option<MockConfig>, RunError> {
    let target = &config.target;
    if target.kind() != TargetKind::Mock {
        return Ok(None);
    }
    let base = MockConfig {
        seed: config.seed,
        model: target.model().to_owned(),
        // Nobody reads the embedded mock's ground truth after the run: keep memory flat in
        // long runs (the benchmark shares the process).
        record_limit: EMBEDDED_RECORD_LIMIT,
        // Count prompts with the client's tokenizer, as a real server counts with its own
        // (one that does not load is the engine's to report, under its own key).
        tokenizer: config
            .data
            .tokenizer
            .as_ref()
            .map(PathBuf::from)
            .filter(|p| p.exists()),
        ..MockConfig::default()
    };
    let mock = match &target.mock {
        Some(table) => table.parse_over("target.mock", &base)?,
        None => base,
    };
    mock.validate()
        .map_err(|e| RunError::BadInput(format!("invalid [target.mock]: {e}")))?;
    Ok(Some(mock))
}

/// A mock server on a runtime of its own, so its work never delays a client's schedule.
#[derive(Debug)]
pub struct Embedded {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
}

impl Embedded {
    /// Starts the mock with `settings`.
    pub fn start(settings: MockConfig) -> Result<Self, RunError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-mock")
            .enable_all()
            .build()
            .map_err(|e| RunError::Failed(format!("cannot start the mock's runtime: {e}")))?;
        let server = runtime
            .block_on(MockServer::start(settings))
            .map_err(|e| RunError::Failed(format!("cannot start the mock server: {e}")))?;
        tracing::info!("mock server at {}", server.base_url());
        Ok(Self { runtime, server })
    }

    /// A copy of `target` pointed at this mock, as a plain server.
    pub fn target(&self, target: &Target) -> Target {
        let mut resolved = target.clone();
        resolved.kind = Some(TargetKind::Server);
        resolved.url = Some(self.server.base_url());
        resolved.model = Some(target.model().to_owned());
        resolved.mock = None;
        resolved
    }

    /// The running server (its URL, statistics and ground truth).
    pub fn server(&self) -> &MockServer {
        &self.server
    }

    /// Stops the server and its runtime.
    pub fn stop(self) {
        self.runtime.block_on(self.server.shutdown());
    }
}
