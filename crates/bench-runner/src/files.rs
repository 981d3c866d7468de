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
    let text = bench_core::render::render(report, format)
        .map_err(|e| RunError::Failed(format!("cannot render {}: {e}", output.path)))?;
    write_atomically(Path::new(&output.path), text.as_bytes())
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
