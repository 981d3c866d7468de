//! A tool installed as a Python package: that its command exists, and which release of the
//! package its Python holds. Asking the tool for `--version` costs seconds of imports; the
//! package's metadata answers the same in a few milliseconds.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest the version query may take (a cold Python start on a busy machine).
const QUERY_LIMIT: Duration = Duration::from_secs(30);

/// What is wrong with the installation, in words that name the fix.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The program is not on PATH or not at the given path.
    NotFound(String),
    /// The program runs, but its Python has no such package (or cannot be asked).
    NoPackage { program: String, detail: String },
}

/// The version of `package` the command runs, or None when the command is not a Python
/// program whose interpreter can be found (a wrapper script): then nothing is known until it
/// runs.
pub(crate) async fn version(command: &[String], package: &str) -> Result<Option<String>, Problem> {
    let Some(program) = command.first() else {
        return Err(Problem::NotFound(String::new()));
    };
    let path = find(program).ok_or_else(|| Problem::NotFound(program.clone()))?;
    let Some(python) = interpreter(&path, command.len() > 1) else {
        return Ok(None);
    };
    let query = tokio::process::Command::new(&python)
        .args([
            "-c",
            "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
            package,
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(QUERY_LIMIT, query).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => {
            return Err(Problem::NoPackage {
                program: program.clone(),
                detail: format!("cannot run its Python {}: {error}", python.display()),
            })
        }
        Err(_) => {
            return Err(Problem::NoPackage {
                program: program.clone(),
                detail: format!(
                    "its Python {} did not answer within {} s",
                    python.display(),
                    QUERY_LIMIT.as_secs()
                ),
            })
        }
    };
    if !output.status.success() {
        return Err(Problem::NoPackage {
            program: program.clone(),
            detail: format!("its Python {} has no {package} package", python.display()),
        });
    }
    Ok(Some(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}

/// The Python interpreter that runs the tool for `command`, when it can be found.
pub fn python_of(command: &[String]) -> Option<PathBuf> {
    let path = find(command.first()?)?;
    interpreter(&path, command.len() > 1)
}

/// The program as a path: as given when it names a path, else the first match on PATH.
pub(crate) fn find(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// The Python that runs `path`: the program itself when it is a Python given with arguments
/// (`python3 -m genai_bench.cli.cli`), else the interpreter its `#!` line names.
fn interpreter(path: &Path, has_arguments: bool) -> Option<PathBuf> {
    let is_python = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("python"))
    };
    if has_arguments && is_python(path) {
        return Some(path.to_owned());
    }
    let text = std::fs::read(path).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?;
    let mut words = line.split_whitespace();
    let mut interpreter = PathBuf::from(words.next()?);
    if interpreter.file_name().is_some_and(|n| n == "env") {
        interpreter = find(words.next()?)?;
    }
    is_python(&interpreter).then_some(interpreter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interpreter_comes_from_the_shebang_or_the_program() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let script = dir.path().join("genai-bench");
        std::fs::write(&script, "#!/opt/venv/bin/python3\nimport sys\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            interpreter(&script, false),
            Some(PathBuf::from("/opt/venv/bin/python3"))
        );
        std::fs::write(&script, "#!/bin/sh\nexec something\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(interpreter(&script, false), None, "a wrapper tells nothing");
        assert_eq!(
            interpreter(Path::new("/usr/bin/python3"), true),
            Some(PathBuf::from("/usr/bin/python3"))
        );
        assert_eq!(find("surely-not-a-program-llm-bench"), None);
    }

    #[tokio::test]
    async fn a_missing_program_or_package_is_a_problem_that_names_it() {
        assert_eq!(
            version(
                &["surely-not-a-program-llm-bench".to_owned()],
                "genai-bench"
            )
            .await,
            Err(Problem::NotFound(
                "surely-not-a-program-llm-bench".to_owned()
            ))
        );
        // The system python3 has no genai-bench (CI installs it in a venv of its own).
        if find("python3").is_some() {
            let problem = version(
                &["python3".to_owned(), "-c".to_owned(), "pass".to_owned()],
                "genai-bench",
            )
            .await;
            assert!(
                matches!(problem, Err(Problem::NoPackage { .. })),
                "{problem:?}"
            );
        }
    }
}
