"""Cancelling a run (asyncio cancellation, Ctrl-C) returns the partial report promptly."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any, Dict

import pytest

import llm_bench
from conftest import make_config


def long_config() -> Dict[str, Any]:
    """Two 30 s benchmarks: only a cancellation ends the run within the test's limits."""
    config = make_config(streams=[2, 4], max_seconds=30)
    config["constraints"]["interrupt_grace_seconds"] = 0.5
    return config


def check_partial(report: llm_bench.Report) -> None:
    assert isinstance(report, llm_bench.Report)
    assert report.interrupted is True
    assert len(report.benchmarks) == 1, "the second benchmark never started"
    benchmark = report.benchmarks[0]
    assert benchmark.stopped_by == "interrupted"
    totals = benchmark.requests
    assert totals.total > 0, "what was measured before the cancellation is kept"
    assert totals.successful + totals.incomplete + totals.errored == totals.total


def test_wait_for_returns_the_partial_report(figure: Any) -> None:
    async def main() -> llm_bench.Report:
        return await asyncio.wait_for(llm_bench.run_async(long_config()), 1.0)

    started = time.monotonic()
    report = asyncio.run(main())
    elapsed = time.monotonic() - started
    figure(f"cancellation: asyncio.wait_for(run_async, 1.0) returned after {elapsed:.3f} s")
    assert elapsed < 2.0, f"run_async took {elapsed:.2f} s to return after its cancellation"
    check_partial(report)


def test_task_cancel_returns_the_partial_report() -> None:
    async def main() -> llm_bench.Report:
        task = asyncio.ensure_future(llm_bench.run_async(long_config()))
        await asyncio.sleep(1.0)
        task.cancel()
        return await task

    started = time.monotonic()
    report = asyncio.run(main())
    assert time.monotonic() - started < 2.0
    check_partial(report)


def test_ctrl_c_returns_the_partial_report(figure: Any) -> None:
    assert threading.current_thread() is threading.main_thread(), "SIGINT goes to the main thread"
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        report = llm_bench.run(long_config())
    except KeyboardInterrupt:
        pytest.fail("run raised KeyboardInterrupt instead of returning the partial report")
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    figure(f"cancellation: run returned {elapsed - 1.0:.3f} s after SIGINT ({elapsed:.3f} s in all)")
    assert elapsed < 3.5, f"run took {elapsed:.2f} s to return (SIGINT at 1 s)"
    check_partial(report)
