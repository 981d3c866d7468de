"""The Python examples run as shipped, and they and the package pass `mypy --strict`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"
#: Each example runs against a MockServer in about 10 s; this is the limit.
TIMEOUT_S = 60


def examples() -> List[Path]:
    return sorted(EXAMPLES.glob("*.py")) if EXAMPLES.is_dir() else []


def require_examples() -> List[Path]:
    found = examples()
    if not found:
        pytest.fail(
            f"no Python examples: {EXAMPLES} is missing or holds no *.py "
            "(examples/python/*.py must exist, each runnable with no arguments)",
            pytrace=False,
        )
    return found


def test_the_examples_exist() -> None:
    require_examples()


# Without examples, one case that fails (an empty parameter set would skip).
@pytest.mark.parametrize("example", examples() or [EXAMPLES / "none"], ids=lambda p: p.name)
def test_an_example_runs_with_no_arguments(
    example: Path, tmp_path: Path, figure: Any
) -> None:
    if not example.is_file():
        require_examples()
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(example)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(
            f"{example.name} did not end within {TIMEOUT_S} s\n"
            f"stdout:\n{expired.stdout!r}\nstderr:\n{expired.stderr!r}",
            pytrace=False,
        )
    elapsed = time.monotonic() - started
    figure(f"example {example.name}: exit {done.returncode} in {elapsed:.1f} s")
    assert done.returncode == 0, (
        f"{example.name} exited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )


def mypy_strict(target: List[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), *target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"mypy --strict {' '.join(target)}:\n{done.stdout}{done.stderr}"


def test_the_examples_pass_mypy_strict(tmp_path: Path) -> None:
    require_examples()
    mypy_strict([str(EXAMPLES)], tmp_path)


def test_the_package_passes_mypy_strict(tmp_path: Path) -> None:
    mypy_strict(["-p", "llm_bench"], tmp_path)
