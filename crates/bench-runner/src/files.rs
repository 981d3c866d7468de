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
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let parsed = if yaml {
        serde_norway::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        RunError::BadInput(format!(
            "{} is not an llm-bench report (schema version {}): {e}",
            path.display(),
            bench_core::schema::SCHEMA_VERSION
        ))
    })
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
