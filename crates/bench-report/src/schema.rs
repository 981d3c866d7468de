//! The JSON Schemas of this crate's outputs besides the report itself (whose schema is
//! bench-core's), as committed in `docs/schema/`.

use crate::compare::Comparison;
use crate::render::autotuner::AutotunerMetrics;

/// The JSON Schema of the autotuner's metrics object (`format = "autotuner"`), as committed in
/// `docs/schema/autotuner.schema.json`.
pub fn autotuner_json_schema() -> String {
    pretty(schemars::schema_for!(AutotunerMetrics))
}

/// The JSON Schema of `llm-bench compare`'s JSON output.
pub fn comparison_json_schema() -> String {
    pretty(schemars::schema_for!(Comparison))
}

fn pretty(schema: schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The committed schemas must match the types. `UPDATE_SCHEMAS=1 cargo test` (or
    /// `cargo xtask codegen`) rewrites them.
    #[test]
    fn committed_json_schemas_are_fresh() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (name, text) in [
            ("autotuner.schema.json", super::autotuner_json_schema()),
            ("comparison.schema.json", super::comparison_json_schema()),
        ] {
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "stale schemas in docs/schema: {stale:?}; run `cargo xtask codegen` and commit them"
        );
    }
}
