//! The documented exit codes of `llm-bench` (docs/cli.md).

/// The command did what was asked.
pub const OK: u8 = 0;
/// The run could not happen or its results could not be written.
pub const RUN_FAILED: u8 = 1;
/// Bad input (config, data, flags) or a missing prerequisite (an engine's command, the
/// open-file limit). Nothing was sent to the server.
pub const BAD_INPUT: u8 = 2;
/// `compare` found values that differ beyond the tolerance.
pub const DIFFERENT: u8 = 3;
/// The run finished and its report was written, but at least one benchmark completed no
/// successful request: its figures describe failures only.
pub const NO_SUCCESS: u8 = 4;
/// The target cannot be benchmarked: unreachable, or not answering as an OpenAI-compatible
/// server (the message says what came back). Nothing was measured.
pub const TARGET_FAILED: u8 = 5;
/// Interrupted by SIGINT or SIGTERM; the partial report was written.
pub const INTERRUPTED: u8 = 130;
