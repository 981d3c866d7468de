//! The core of llm-bench: what every engine and every front end shares.
//!
//! - [`BenchmarkEngine`]: the trait an engine implements, with [`RunContext`] (progress and
//!   cancellation) and [`Capabilities`].
//! - [`registry`]: engines register themselves with `inventory`; lookups by name.
//! - [`config`]: the configuration model, loaded from TOML, YAML or JSON text.
//! - [`schema`]: the unified, versioned report ([`Report`]) every engine produces.
//! - [`stats`]: the one statistics implementation (HdrHistogram plus exact moments).
//! - [`sweep`]: a sweep's rate steps from its measured ends, the same in every engine.
//! - [`search`]: the SLO search's next rate, step verdicts (Wilson intervals) and answer.
//! - [`features`]: the optional things a config asks of an engine, for generic refusals.
//! - [`measure`]: per-request records folded into a [`schema::Benchmark`], for every engine.
//! - [`progress`]: typed progress events; [`cancel`]: the cancellation token.
//! - [`live`]: the running benchmark's figures for a Prometheus scrape.
//!
//! Rendering and comparing reports is the bench-report crate's job.
//! This crate does no network or process IO and picks no async runtime.
//!
//! Its modules form layers; a module uses only the ones below it (a tidy test in xtask checks
//! that there is no cycle):
//!
//! ```text
//! registry
//! engine
//! live
//! progress   measure
//! stats      sweep      search
//! schema     features
//! config
//! error      cancel     time
//! ```

pub mod cancel;
pub mod config;
mod engine;
mod error;
pub mod features;
pub mod live;
pub mod measure;
pub mod progress;
pub mod registry;
pub mod schema;
pub mod search;
pub mod stats;
pub mod sweep;
mod time;

pub use cancel::CancelToken;
pub use config::Config;
pub use engine::{BenchmarkEngine, Capabilities, MetricKind, Preflight, RunContext};
pub use error::{ConfigError, EngineError};
pub use features::Feature;
pub use registry::EngineRegistration;
pub use schema::Report;

/// Re-exported so engine crates register with the same `inventory` version as the registry.
#[doc(hidden)]
pub use inventory;

/// Re-exported so engine crates implement [`BenchmarkEngine`] with the same macro version.
pub use async_trait::async_trait;
