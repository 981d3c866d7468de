//! Report files, written atomically.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::RunError;

/// Renders `report` in `output`'s format and writes it there atomically.
pub fn write_report(
    report: &bench_core::Report,
    output: &bench_core::config::OutputSpec,
) -> Result<(), RunError> {
    let format = output
        .resolved_format()
        .map_err(|e| RunError::BadInput(e.to_string()))?;
    let text = bench_report::render::render(report, format)
        .map_err(|e| RunError::Failed(format!("cannot render {}: {e}", output.path)))?;
    write_atomically(Path::new(&output.path), text.as_bytes())
}

/// Reads a saved report: YAML by its extension (`.yaml`, `.yml`), JSON otherwise.
pub fn read_report(path: &Path) -> Result<bench_core::Report, RunError> {
    let text = fs::read_to_string(path)
        .map_err(|e| RunError::BadInput(format!("cannot read report {}: {e}", path.display())))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let yaml = matches!(extension.as_deref(), Some("yaml" | "yml"));
    let parsed = if yaml {
        serde_norway::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        if looks_like_a_config(&text, extension.as_deref()) {
            return RunError::BadInput(format!(
                "{0} is a config, not a report; `report` and `compare` read a report written by `llm-bench run` (.json, .yaml or .yml); to run this config: llm-bench run --config {0}",
                path.display()
            ));
        }
        RunError::BadInput(format!(
            "{} is not an llm-bench report (schema version {}): {e}",
            path.display(),
            bench_core::schema::SCHEMA_VERSION
        ))
    })
}

/// A TOML file (a report is never TOML), or a JSON or YAML table with a config's top-level keys
/// and no `benchmarks`.
fn looks_like_a_config(text: &str, extension: Option<&str>) -> bool {
    if extension == Some("toml") {
        return true;
    }
    let tree: Option<serde_json::Value> = match extension {
        Some("yaml" | "yml") => serde_norway::from_str(text).ok(),
        _ => serde_json::from_str(text).ok(),
    };
    let Some(serde_json::Value::Object(map)) = tree else {
        return false;
    };
    !map.contains_key("benchmarks")
        && ["profile", "data", "target", "benchmark"]
            .iter()
            .any(|k| map.contains_key(*k))
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename, so
/// a reader (or a crash) never sees half a file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), RunError> {
    let failed = |what: String, error: std::io::Error| RunError::Failed(format!("{what}: {error}"));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)
        .map_err(|e| failed(format!("cannot create directory {}", dir.display()), e))?;
    let Some(name) = path.file_name() else {
        return Err(RunError::BadInput(format!(
            "output path {} names no file",
            path.display()
        )));
    };
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if let Err(error) = result {
        let _ = fs::remove_file(&temporary);
        return Err(failed(format!("cannot write {}", path.display()), error));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/report.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["report.json"]);
    }

    #[test]
    fn a_failed_write_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_atomically(dir.path(), b"x").unwrap_err();
        assert!(format!("{error:#}").contains("cannot write"), "{error:#}");
    }
}
