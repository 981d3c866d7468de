"""Runs in a loop do not leak: RSS stays flat over 50 short runs."""

from __future__ import annotations

import time
from typing import Any, List

import llm_bench
from conftest import make_config, synthetic, vm_rss_kb

WARMUP = 5
RUNS = 50
#: The growth allowed over the 50 runs.
LIMIT_KB = 8 * 1024


def test_fifty_runs_do_not_grow_rss(figure: Any) -> None:
    config = make_config(streams=[5], max_requests=5, max_seconds=5, data=synthetic(16, 4))
    for _ in range(WARMUP):
        llm_bench.run(config)
    before = vm_rss_kb()
    started = time.monotonic()
    samples: List[int] = []
    for index in range(RUNS):
        report = llm_bench.run(config)
        assert report.benchmarks[0].requests.successful == 5
        if index % 10 == 9:
            samples.append(vm_rss_kb())
    after = vm_rss_kb()
    growth = after - before
    figure(
        f"RSS: {before} kB after {WARMUP} warm-up runs, {after} kB after {RUNS} more "
        f"({growth:+d} kB; every 10 runs: {samples}); {RUNS} runs in "
        f"{time.monotonic() - started:.1f} s"
    )
    assert growth < LIMIT_KB, f"RSS grew by {growth} kB over {RUNS} runs"
