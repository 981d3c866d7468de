"""Shared fixtures of the llm_bench Python suite (run by crates/bench-cli/tests/python.rs).

Most tests run against the embedded mock (a config without ``[target]``), so no server is
needed; every run is kept to a few seconds, as the whole suite must stay well under 2 minutes
on a 2-core machine.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

#: The repository's root (tests/python/conftest.py -> ../..).
REPO = Path(__file__).resolve().parents[2]

#: Figures worth reading even when every test passes (RSS growth, cancellation latencies),
#: printed in a section of their own at the end of the session.
_FIGURES: List[str] = []


def synthetic(prompt_tokens: int = 32, output_tokens: int = 16) -> Dict[str, Any]:
    """Synthetic data without a tokenizer (words, about one token each)."""
    return {
        "kind": "synthetic",
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "approximate": True,
    }


def make_config(
    *,
    streams: Sequence[int] = (2,),
    max_seconds: Optional[float] = 2,
    max_requests: Optional[int] = None,
    data: Any = None,
    target: Optional[Dict[str, Any]] = None,
    **more: Any,
) -> Dict[str, Any]:
    """A short concurrent benchmark config as a dict (the TOML's keys), against the embedded
    mock unless ``target`` is given; ``more`` adds or replaces top-level keys."""
    constraints: Dict[str, Any] = {}
    if max_seconds is not None:
        constraints["max_seconds"] = max_seconds
    if max_requests is not None:
        constraints["max_requests"] = max_requests
    config: Dict[str, Any] = {
        "profile": {"kind": "concurrent", "streams": list(streams)},
        "constraints": constraints,
        "data": synthetic() if data is None else data,
    }
    if target is not None:
        config["target"] = target
    config.update(copy.deepcopy(more))
    return config


def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def vm_rss_kb() -> int:
    """This process's resident set size, from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        found = re.search(r"^VmRSS:\s+(\d+)\s+kB", status.read(), re.MULTILINE)
    assert found, "no VmRSS in /proc/self/status"
    return int(found.group(1))


@pytest.fixture(scope="session")
def bench_bin() -> Path:
    """The llm-bench binary (env LLM_BENCH_BIN), to compare the Python API with the CLI."""
    value = os.environ.get("LLM_BENCH_BIN", "")
    if not value:
        pytest.fail(
            "LLM_BENCH_BIN is not set: point it at the llm-bench binary "
            "(`cargo build -p bench-cli` makes target/debug/llm-bench; "
            "crates/bench-cli/tests/python.rs sets it)",
            pytrace=False,
        )
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"LLM_BENCH_BIN={value} is not an executable file", pytrace=False)
    return path


class Cli:
    """Runs the llm-bench binary."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def __call__(
        self, *args: str, cwd: Optional[Path] = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="session")
def cli(bench_bin: Path) -> Cli:
    return Cli(bench_bin)


@pytest.fixture
def write_config(tmp_path: Path) -> Any:
    """Writes a config dict as a JSON config file in the test's temporary folder and returns
    its path."""

    def write(config: Dict[str, Any], name: str = "config.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return path

    return write


@pytest.fixture
def figure() -> Any:
    """Records a line for the end-of-session "llm_bench figures" section."""

    def record(line: str) -> None:
        _FIGURES.append(line)
        print(line)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("llm_bench figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Runs the test in its temporary folder, so relative report paths land there."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
