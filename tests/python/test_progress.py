"""Progress events: typed, in order, at least once a second, through a callback and stream."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, List, Tuple, Union

import pytest

import llm_bench
from conftest import make_config

Item = Union[llm_bench.ProgressEvent, llm_bench.Report]

#: A 2.5 s benchmark: at least two updates.
SECONDS = 2.5


def check_events(timed: List[Tuple[float, Item]], benchmarks: int) -> None:
    """started, updates at least once a second, finished, for each benchmark in turn."""
    events = [item for _, item in timed]
    kinds = [type(e).__name__ for e in events]
    assert isinstance(events[0], llm_bench.BenchmarkStartedEvent), kinds
    index = -1
    running = False
    updates = 0
    for event in events:
        if isinstance(event, llm_bench.BenchmarkStartedEvent):
            assert not running, f"started before the previous one finished: {kinds}"
            index += 1
            assert event.index == index
            assert event.strategy.kind == "concurrent"
            running = True
            last_elapsed = -1.0
        elif isinstance(event, llm_bench.UpdateEvent):
            assert running and event.index == index, kinds
            assert event.elapsed_s > last_elapsed, "updates in order"
            last_elapsed = event.elapsed_s
            totals = event.requests
            assert totals.successful + totals.incomplete + totals.errored == totals.total
            updates += 1
        elif isinstance(event, llm_bench.BenchmarkFinishedEvent):
            assert running and event.index == index, kinds
            assert event.benchmark.index == index
            assert event.benchmark.requests.total > 0
            running = False
        else:
            raise AssertionError(f"not a progress event: {event!r}")
    assert not running and index + 1 == benchmarks, kinds
    assert updates >= 2 * benchmarks, f"{updates} updates in {benchmarks} x {SECONDS} s: {kinds}"
    # At least once a second while a benchmark runs (some slack for the 2-core machine).
    times = [at for at, _ in timed]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < 1.4, f"a gap of {max(gaps):.2f} s between events: {kinds}"


def test_the_callback_gets_the_events_in_order_on_the_callers_thread() -> None:
    caller = threading.get_ident()
    timed: List[Tuple[float, Item]] = []

    def progress(event: llm_bench.ProgressEvent) -> None:
        assert threading.get_ident() == caller, "called on the caller's thread"
        timed.append((time.monotonic(), event))

    report = llm_bench.run(make_config(streams=[2], max_seconds=SECONDS), progress=progress)
    check_events(timed, 1)
    finished = timed[-1][1]
    assert isinstance(finished, llm_bench.BenchmarkFinishedEvent)
    # The event's benchmark is the report's, drain included.
    assert finished.benchmark.to_dict() == report.benchmarks[0].to_dict()
    assert finished.benchmark.drain is not None
    assert [w.code for w in report.warnings if w.code.startswith("progress_")] == []


def test_run_async_delivers_progress_too() -> None:
    seen: List[str] = []

    async def main() -> llm_bench.Report:
        return await llm_bench.run_async(
            make_config(streams=[2], max_requests=4, max_seconds=5),
            progress=lambda e: seen.append(type(e).__name__),
        )

    report = asyncio.run(main())
    assert report.benchmarks[0].requests.total == 4
    assert seen[0] == "BenchmarkStartedEvent" and seen[-1] == "BenchmarkFinishedEvent", seen


def test_stream_yields_the_events_then_the_report() -> None:
    async def main() -> List[Tuple[float, Item]]:
        items: List[Tuple[float, Item]] = []
        async for item in llm_bench.stream(make_config(streams=[2], max_seconds=SECONDS)):
            items.append((time.monotonic(), item))
        return items

    items = asyncio.run(main())
    report = items[-1][1]
    assert isinstance(report, llm_bench.Report), "the report comes last"
    assert not any(isinstance(item, llm_bench.Report) for _, item in items[:-1])
    check_events(items[:-1], 1)
    assert report.interrupted is False
    assert report.benchmarks[0].requests.total > 0


def test_a_callback_that_raises_does_not_stop_the_run(caplog: pytest.LogCaptureFixture) -> None:
    calls: List[str] = []

    def progress(event: llm_bench.ProgressEvent) -> None:
        calls.append(type(event).__name__)
        raise RuntimeError("the caller's bug")

    with caplog.at_level(logging.ERROR, logger="llm_bench"):
        report = llm_bench.run(
            make_config(streams=[2], max_requests=6, max_seconds=5), progress=progress
        )
    assert report.interrupted is False
    assert report.benchmarks[0].requests.successful == 6, "the run went on"
    assert calls[0] == "BenchmarkStartedEvent" and calls[-1] == "BenchmarkFinishedEvent", calls
    codes = [w.code for w in report.warnings]
    assert "progress_callback_failed" in codes, codes
    warning = next(w for w in report.warnings if w.code == "progress_callback_failed")
    assert "the caller's bug" in warning.message
    assert f"{len(calls)} time(s)" in warning.message
    assert "progress_callback_failed" in [w["code"] for w in report.to_dict()["warnings"]]
