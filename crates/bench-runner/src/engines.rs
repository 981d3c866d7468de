//! The one list of engine crates linked into `llm-bench` and the `llm_bench` Python package.
//!
//! An engine registers itself with `inventory`, but an rlib that no code names is never linked
//! and its registration silently vanishes (dtolnay/inventory#7). So each engine crate is named
//! here, one line each, and `tests::the_compiled_in_engines_are_exactly_these` pins the set.
//! The binary and the Python package link them by depending on this crate.

use engine_genaibench as _;
use engine_guidellm as _;
use engine_native as _;

/// The engines this build is expected to contain, sorted.
pub const EXPECTED: &[&str] = &["genai-bench", "guidellm", "native"];

#[cfg(test)]
mod tests {
    #[test]
    fn the_compiled_in_engines_are_exactly_these() {
        assert_eq!(bench_core::registry::names(), super::EXPECTED);
    }
}
