"""A blocking run leaves the GIL free: other Python threads keep running throughout."""

from __future__ import annotations

import threading
import time
from typing import Any, List

import llm_bench
from conftest import make_config


def test_a_python_thread_ticks_throughout_a_run(figure: Any) -> None:
    ticks: List[float] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    ticker = threading.Thread(target=tick, daemon=True)
    started = time.monotonic()
    ticker.start()
    try:
        report = llm_bench.run(make_config(streams=[4], max_seconds=2))
    finally:
        ended = time.monotonic()
        stop.set()
        ticker.join(5)
    assert report.benchmarks[0].requests.successful > 0

    during = [t for t in ticks if started <= t <= ended]
    points = [started, *during, ended]
    worst = max(b - a for a, b in zip(points, points[1:]))
    figure(
        f"GIL: {len(during)} ticks of 10 ms during a {ended - started:.2f} s run, "
        f"longest gap {worst * 1000:.0f} ms"
    )
    assert len(during) >= 100, f"only {len(during)} ticks in {ended - started:.2f} s"
    assert worst < 0.5, f"the thread stalled for {worst:.3f} s: the GIL was held"
