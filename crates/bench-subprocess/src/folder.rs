//! The run folder: where a tool writes its results and logs, kept when the config names it,
//! else a temporary folder removed once the results are read (also when the run fails).

use std::path::{Path, PathBuf};

use bench_core::schema::{Timestamp, Warning};
use bench_core::EngineError;

use crate::Tool;

/// A tool's folder for one run.
#[derive(Debug)]
pub(crate) struct RunFolder {
    path: PathBuf,
    temporary: bool,
}

impl RunFolder {
    /// Creates `kept` (the config's folder, kept after the run) or a fresh temporary folder.
    pub(crate) fn create(tool: &Tool, kept: Option<&Path>) -> Result<Self, EngineError> {
        let (path, temporary) = match kept {
            Some(dir) => (dir.to_owned(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "llm-bench-{}-{}-{}",
                    tool.engine,
                    std::process::id(),
                    Timestamp::now().unix_micros()
                )),
                true,
            ),
        };
        std::fs::create_dir_all(&path).map_err(|e| {
            tool.failed(format!(
                "cannot create the run folder {}: {e}",
                path.display()
            ))
        })?;
        Ok(Self { path, temporary })
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the run: a temporary folder is removed; a kept one is named in a warning, so the
    /// reader finds the tool's own files.
    pub(crate) fn close(self, tool: &Tool) -> Option<Warning> {
        (!self.temporary).then(|| Warning {
            code: format!("{}_files", tool.code),
            message: format!(
                "{}'s own results and logs are in {}",
                tool.engine,
                self.path.display()
            ),
        })
    }
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_folder_goes_away_and_a_kept_one_is_named() {
        let tool = crate::tests::TOOL;
        let temporary = RunFolder::create(&tool, None).unwrap();
        let path = temporary.path().to_owned();
        assert!(path.is_dir());
        assert!(temporary.close(&tool).is_none());
        assert!(!path.exists());

        let dir = tempfile::tempdir().unwrap();
        let kept = RunFolder::create(&tool, Some(&dir.path().join("runs"))).unwrap();
        let warning = kept.close(&tool).unwrap();
        assert_eq!(warning.code, "fake_tool_files");
        assert!(dir.path().join("runs").is_dir());
        assert!(warning.message.contains("runs"), "{warning:?}");
    }
}
