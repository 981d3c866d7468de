//! `cargo xtask real-server setup|start|stop|status`: llama.cpp's own HTTP server (the prebuilt
//! `xllamacpp` wheel from PyPI) serving a random-weight Llama with the real LLaMA vocabulary,
//! on 127.0.0.1, for benchmarking something that is not our mock. Nothing is compiled and
//! nothing comes from a model hub: the vocabulary is the vocab-only GGUF that ships in the
//! llama-cpp-python source distribution on PyPI.
//!
//! Everything lives in one folder (`LLM_BENCH_REAL_SERVER_DIR`, default
//! `~/.cache/llm-bench/real-server`); `setup` is idempotent.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

const XLLAMACPP: &str = "xllamacpp==2026.10.11549";
const GGUF: &str = "gguf==0.19.0";
const VOCAB_SDIST: &str = "llama-cpp-python==0.3.36";
const VOCAB_IN_SDIST: &str = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf";
const DEFAULT_PORT: u16 = 8090;

fn folder() -> PathBuf {
    std::env::var_os("LLM_BENCH_REAL_SERVER_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                .join(".cache/llm-bench/real-server")
        },
        PathBuf::from,
    )
}

pub(crate) fn command(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let dir = folder();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let port: u16 = option("--port")
        .map_or(Ok(DEFAULT_PORT), str::parse)
        .context("--port")?;
    let slots: u16 = option("--slots")
        .map_or(Ok(4), str::parse)
        .context("--slots")?;
    match args.first().map(String::as_str) {
        Some("setup") => setup(root, &dir),
        Some("start") => start(root, &dir, port, slots),
        Some("stop") => stop(&dir),
        Some("status") => {
            let pid = std::fs::read_to_string(dir.join("server.pid")).ok();
            match pid {
                Some(pid) if Path::new(&format!("/proc/{}", pid.trim())).exists() => {
                    println!("running, pid {}", pid.trim());
                }
                _ => println!("not running"),
            }
            Ok(())
        }
        _ => bail!("usage: cargo xtask real-server setup | start [--port {DEFAULT_PORT}] [--slots 4] | stop | status"),
    }
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The venv with the server and the GGUF writer, the vocabulary, the model, and a Hugging Face
/// tokenizer for the vocabulary (`tokenizer/`); each step only when its result is missing.
fn setup(root: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let python = dir.join("venv/bin/python");
    if !python.exists() {
        run(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(dir.join("venv")),
            "python3 -m venv",
        )?;
    }
    let marker = dir.join("venv/.llm-bench-installed");
    if !marker.exists() {
        run(
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                XLLAMACPP,
                GGUF,
                "numpy",
            ]),
            "pip install xllamacpp gguf numpy",
        )?;
        std::fs::write(&marker, format!("{XLLAMACPP} {GGUF}\n"))?;
    }
    let vocab = dir.join("ggml-vocab-llama-spm.gguf");
    if !vocab.exists() {
        let sdist = dir.join("sdist");
        run(
            Command::new(&python)
                .args(["-m", "pip", "download", "--quiet", "--no-deps", "-d"])
                .arg(&sdist)
                .arg(VOCAB_SDIST),
            "pip download llama-cpp-python (its source holds the LLaMA vocabulary)",
        )?;
        let archive = std::fs::read_dir(&sdist)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .context("pip download left no .tar.gz")?;
        run(
            Command::new("tar")
                .arg("xzf")
                .arg(&archive)
                .arg("-C")
                .arg(dir)
                .args(["--strip-components=4", "--wildcards"])
                .arg(format!("*/{VOCAB_IN_SDIST}")),
            "tar (the vocabulary out of the source distribution)",
        )?;
        let _ = std::fs::remove_dir_all(&sdist);
    }
    let model = dir.join("tiny-llama.gguf");
    if !model.exists() {
        run(
            Command::new(&python)
                .arg(root.join("xtask/real-server/model.py"))
                .arg(&vocab)
                .arg(&model),
            "model.py",
        )?;
    }
    let tokenizer = dir.join("tokenizer");
    if !tokenizer.join("tokenizer.json").exists() {
        run(
            Command::new(&python)
                .arg(root.join("xtask/real-server/tokenizer.py"))
                .arg(&vocab)
                .arg(&tokenizer),
            "tokenizer.py",
        )?;
    }
    println!(
        "real server ready to start: {} (tokenizer {})",
        model.display(),
        tokenizer.display()
    );
    Ok(())
}

/// Starts the server in the background (its own session, so it outlives this command), waits
/// for `/health`, and leaves its pid in `server.pid`.
fn start(root: &Path, dir: &Path, port: u16, slots: u16) -> anyhow::Result<()> {
    setup(root, dir)?;
    if dir.join("server.pid").exists() {
        stop(dir)?;
    }
    if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        bail!("127.0.0.1:{port} is already in use (another server?); stop it or pass --port");
    }
    let log = std::fs::File::create(dir.join("server.log"))?;
    let child = Command::new("setsid")
        .arg(dir.join("venv/bin/python"))
        .arg(root.join("xtask/real-server/serve.py"))
        .arg(dir.join("tiny-llama.gguf"))
        .arg(port.to_string())
        .arg(slots.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the server (setsid, python)")?;
    std::fs::write(dir.join("server.pid"), child.id().to_string())?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = write!(
                stream,
                "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.1 200") {
                println!("real server at http://127.0.0.1:{port} (model tiny-random-llama, {slots} slots), pid {}; log {}", child.id(), dir.join("server.log").display());
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = stop(dir);
    bail!(
        "the server did not answer /health within 60 s; see {}",
        dir.join("server.log").display()
    )
}

fn stop(dir: &Path) -> anyhow::Result<()> {
    let pid_file = dir.join("server.pid");
    let Ok(pid) = std::fs::read_to_string(&pid_file) else {
        println!("not running");
        return Ok(());
    };
    let pid = pid.trim();
    let _ = Command::new("kill").args(["-TERM", pid]).status();
    let gone = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    std::fs::remove_file(&pid_file)?;
    println!("stopped pid {pid}");
    Ok(())
}
