//! Running one invocation of a tool: in its own process group, stdin closed, its output
//! streamed line by line (secrets blanked), stopped on a timeout or a cancellation by
//! signalling the whole group, so no worker process of the tool outlives it.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bench_core::CancelToken;
use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::secrets::blank;

/// Lines of output kept for an error message.
const TAIL_LINES: usize = 20;
/// How long the group gets to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A program, its arguments and the variables added to its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program: a path, or a name looked up on PATH.
    pub program: String,
    /// Its arguments; never a secret (every user of the host can read them).
    pub args: Vec<String>,
    /// Added to the inherited environment, which only the owner can read: where secrets go.
    pub env: Vec<(String, String)>,
}

/// Why the process did not end on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Timeout,
    Cancelled,
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit status; for a stopped process, the status after the signal.
    pub status: ExitStatus,
    pub stopped: Option<Stopped>,
    /// The last lines of its output (stdout and stderr interleaved), secrets blanked.
    pub tail: Vec<String>,
}

/// Runs `invocation` in `cwd`, handing each output line (secrets blanked) to `on_line`.
/// An error means it could not be started.
pub async fn run(
    invocation: &Invocation,
    cwd: &Path,
    timeout: Duration,
    cancel: &CancelToken,
    secrets: &[String],
    mut on_line: impl FnMut(&str),
) -> std::io::Result<Finished> {
    let mut child = Command::new(&invocation.program)
        .args(&invocation.args)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let (lines, mut received) = mpsc::unbounded_channel::<String>();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(BufReader::new(out), lines.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(BufReader::new(err), lines.clone()));
    }
    drop(lines);
    let mut tail: Vec<String> = Vec::new();
    let mut keep = |line: String, tail: &mut Vec<String>| {
        let line = blank(&line, secrets);
        on_line(&line);
        if tail.len() == TAIL_LINES {
            tail.remove(0);
        }
        tail.push(line);
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut stopped = None;
    let mut open = true;
    let status = loop {
        tokio::select! {
            line = received.recv(), if open => match line {
                Some(line) => keep(line, &mut tail),
                None => open = false,
            },
            status = child.wait() => break status?,
            () = &mut deadline => {
                if stopped.is_none() {
                    stopped = Some(Stopped::Timeout);
                    signal(group, Signal::TERM);
                    deadline.as_mut().reset(tokio::time::Instant::now() + TERM_GRACE);
                } else {
                    // It ignored SIGTERM for the whole grace.
                    signal(group, Signal::KILL);
                    deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
            }
            () = cancel.cancelled(), if stopped.is_none() => {
                stopped = Some(Stopped::Cancelled);
                signal(group, Signal::TERM);
                deadline.as_mut().reset(tokio::time::Instant::now() + TERM_GRACE);
            }
        }
    };
    // Whatever the leader did, nothing of its group may outlive it.
    signal(group, Signal::KILL);
    while let Ok(Some(line)) =
        tokio::time::timeout(Duration::from_millis(200), received.recv()).await
    {
        keep(line, &mut tail);
    }
    Ok(Finished {
        status,
        stopped,
        tail,
    })
}

async fn forward<R: tokio::io::AsyncRead + Unpin>(
    reader: BufReader<R>,
    lines: mpsc::UnboundedSender<String>,
) {
    let mut reader = reader.lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if lines.send(line).is_err() {
            return;
        }
    }
}

fn signal(group: Option<Pid>, signal: Signal) {
    if let Some(group) = group {
        // The group may be gone already; that is the goal.
        let _ = kill_process_group(group, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Invocation {
        Invocation {
            program: "sh".to_owned(),
            args: vec!["-c".to_owned(), script.to_owned()],
            env: vec![("SECRET".to_owned(), "sk-123".to_owned())],
        }
    }

    #[tokio::test]
    async fn output_streams_with_secrets_blanked_and_the_exit_status_is_kept() {
        let mut seen = Vec::new();
        let finished = run(
            &shell("echo start; echo \"api_key: $SECRET\" >&2; exit 3"),
            &std::env::temp_dir(),
            Duration::from_secs(10),
            &CancelToken::new(),
            &["sk-123".to_owned()],
            |l| seen.push(l.to_owned()),
        )
        .await
        .unwrap();
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.stopped, None);
        seen.sort();
        assert_eq!(seen, ["api_key: <redacted>", "start"]);
    }

    /// A timeout kills the whole group: a grandchild that ignores the parent's death is gone
    /// too (its pid file names it; `kill -0` then fails).
    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group_leaving_no_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let started = std::time::Instant::now();
        let finished = run(
            &shell(&script),
            dir.path(),
            Duration::from_millis(500),
            &CancelToken::new(),
            &[],
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(finished.stopped, Some(Stopped::Timeout));
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Reaped by init once killed; give it a moment.
        let mut alive = true;
        for _ in 0..50 {
            alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z");
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!alive, "the grandchild {pid} outlived the timeout");
    }

    #[tokio::test]
    async fn cancelling_stops_the_run_at_once() {
        let cancel = CancelToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let started = std::time::Instant::now();
        let finished = run(
            &shell("sleep 30"),
            &std::env::temp_dir(),
            Duration::from_secs(60),
            &cancel,
            &[],
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(finished.stopped, Some(Stopped::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
