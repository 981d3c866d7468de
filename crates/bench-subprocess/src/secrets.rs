//! Secrets (the API key) around a tool: looked up once, handed over through the environment
//! (which only the owner can read) and never on a command line (which every user of the host
//! can read in `/proc/<pid>/cmdline`), and blanked from whatever the tool prints or leaves.

use std::path::Path;

use bench_core::config::Target;

use crate::process::Invocation;

/// What takes a secret's place in text.
const BLANK: &str = "<redacted>";

/// The environment variable that hands the API key to [`python_launcher`].
pub const KEY_VARIABLE: &str = "LLM_BENCH_TOOL_API_KEY";

/// What stands for the key on a command line run by [`python_launcher`].
pub const KEY_MARKER: &str = "@llm-bench-key-from-environment";

/// The API key `[target]` names (`api_key_env`), if that variable holds one.
pub fn api_key(target: &Target) -> Option<String> {
    if target.api_key_env.is_empty() {
        return None;
    }
    std::env::var(&target.api_key_env)
        .ok()
        .filter(|k| !k.is_empty())
}

/// `text` with every secret replaced.
pub fn blank(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), BLANK);
        }
    }
    text
}

/// Blanks every secret in the text files (`.json`, `.jsonl`, `.log`, `.txt`, `.csv`, `.yaml`)
/// in `folders` and below: files that stay on disk after the run.
pub fn scrub_files(folders: &[&Path], secrets: &[String]) {
    if secrets.iter().all(|s| s.is_empty()) {
        return;
    }
    let text_file = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "jsonl" | "log" | "txt" | "csv" | "yaml"))
    };
    let mut files = Vec::new();
    let mut pending: Vec<std::path::PathBuf> = folders.iter().map(|f| f.to_path_buf()).collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else if text_file(&path) {
                files.push(path);
            }
        }
    }
    for file in files {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let clean = blank(&text, secrets);
            if clean != text {
                let _ = std::fs::write(&file, clean);
            }
        }
    }
}

/// A Python console entry point: `from <module> import <function>`, run as `<program>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonEntry {
    /// The module, e.g. `genai_bench.cli.cli`.
    pub module: &'static str,
    /// The function the console script calls, e.g. `cli`.
    pub function: &'static str,
    /// `sys.argv[0]` as the tool's help and errors show it.
    pub program: &'static str,
}

/// Runs `entry` under `python` with `args`, where [`KEY_MARKER`] is replaced in-process by
/// `key` wherever an argument holds it (the whole argument, or inside a JSON option), taken from [`KEY_VARIABLE`]: for tools that take the key only
/// as a command-line option. `/proc/<pid>/cmdline` only ever holds the marker, and the
/// variable is removed from the environment before the tool starts anything.
pub fn python_launcher(
    python: &Path,
    entry: PythonEntry,
    args: Vec<String>,
    key: &str,
) -> Invocation {
    let script = format!(
        "import os, sys\n\
         from {module} import {function} as main\n\
         key = os.environ.pop('{KEY_VARIABLE}', '')\n\
         sys.argv = ['{program}'] + [a.replace('{KEY_MARKER}', key) for a in sys.argv[1:]]\n\
         sys.exit(main())\n",
        module = entry.module,
        function = entry.function,
        program = entry.program,
    );
    Invocation {
        program: python.display().to_string(),
        args: ["-c".to_owned(), script].into_iter().chain(args).collect(),
        env: vec![(KEY_VARIABLE.to_owned(), key.to_owned())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_blanked_in_text_and_in_the_files_left_behind() {
        let secrets = ["sk-123".to_owned(), String::new()];
        assert_eq!(
            blank("key sk-123, again sk-123", &secrets),
            "key <redacted>, again <redacted>"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "{\"cmd\": \"--api-key sk-123\"}").unwrap();
        std::fs::write(dir.path().join("b.bin"), "sk-123").unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("logs/run.log"), "key sk-123").unwrap();
        scrub_files(&[dir.path()], &secrets);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("logs/run.log")).unwrap(),
            "key <redacted>"
        );
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("a.json"), "{\"cmd\": \"--api-key <redacted>\"}");
        assert_eq!(read("b.bin"), "sk-123", "only text files are rewritten");
    }

    /// The launcher, run by a real Python, sees the key in place of the marker while its own
    /// command line holds only the marker.
    #[test]
    fn the_launcher_puts_the_key_in_place_of_the_marker_inside_python_only() {
        let python =
            crate::python::find("python3").expect("python3 on PATH (the tools are Python)");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("fake_tool.py"),
            "import os, sys\n\
             def main():\n\
             \x20   cmdline = open('/proc/self/cmdline').read()\n\
             \x20   print(sys.argv[0], sys.argv[1:], 'sk-9' in cmdline, 'LLM_BENCH_TOOL_API_KEY' in os.environ)\n\
             \x20   return 0\n",
        )
        .unwrap();
        let entry = PythonEntry {
            module: "fake_tool",
            function: "main",
            program: "fake-tool",
        };
        let i = python_launcher(
            &python,
            entry,
            vec![
                "--api-key".to_owned(),
                KEY_MARKER.to_owned(),
                format!("{{\"api_key\":\"{KEY_MARKER}\"}}"),
            ],
            "sk-9",
        );
        assert!(i.args.iter().all(|a| !a.contains("sk-9")), "{:?}", i.args);
        let out = std::process::Command::new(&i.program)
            .args(&i.args)
            .envs(i.env.iter().map(|(k, v)| (k, v)))
            .env("PYTHONPATH", dir.path())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "fake-tool ['--api-key', 'sk-9', '{\"api_key\":\"sk-9\"}'] False False",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
