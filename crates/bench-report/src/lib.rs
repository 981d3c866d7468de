//! What llm-bench makes of a finished [`Report`](bench_core::Report) for people and other
//! programs, used only by the front ends:
//!
//! - [`render`]: the report as JSON, YAML, CSV, the console summary table, a self-contained
//!   HTML page, and the autotuner's metrics object ([`render::autotuner`]).
//! - [`compare`]: reports side by side, benchmarks matched and differences flagged.
//! - [`merge`]: a sharded run's shard reports joined exactly into the run's report.
//! - [`schema`]: the JSON Schemas of the autotuner's object and of a comparison.
//!
//! Everything renders to strings; writing files is the caller's job. The report types
//! themselves, and their schema, are bench-core's.

pub mod compare;
pub mod merge;
pub mod render;
pub mod schema;
