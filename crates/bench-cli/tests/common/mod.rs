//! What the test binaries of the `llm-bench` binary share.

use std::process::{Command, Stdio};

/// Runs the binary to its end with `args`, under `sh -c` with `shell_prefix` before it (for
/// `ulimit`), and returns (exit code, stdout, stderr).
pub(crate) fn run_binary(shell_prefix: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let script = format!("{shell_prefix} exec \"$0\" \"$@\"");
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_llm-bench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
