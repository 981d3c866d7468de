//! The documented exit codes of `llm-bench` (docs/cli.md).

/// The command did what was asked.
pub const OK: u8 = 0;
/// The run could not happen or its results could not be written.
pub const RUN_FAILED: u8 = 1;
/// Bad input: config, data, flags. Nothing was sent to the server.
pub const BAD_INPUT: u8 = 2;
/// `compare` found values that differ beyond the tolerance.
pub const DIFFERENT: u8 = 3;
/// Interrupted by SIGINT or SIGTERM; the partial report was written.
pub const INTERRUPTED: u8 = 130;
