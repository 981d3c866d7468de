"""llm_bench.MockServer: known timings, ground truth, faults."""

from __future__ import annotations

import re
from typing import Any

import llm_bench
from conftest import make_config


def test_the_report_measures_the_mocks_timings() -> None:
    with llm_bench.MockServer(ttft_ms=30, itl_ms=5) as mock:
        assert mock.url.startswith("http://127.0.0.1:")
        assert mock.model == "mock-model"
        config = make_config(
            streams=[2], max_requests=8, max_seconds=10,
            target={"url": mock.url, "model": mock.model},
        )
        report = llm_bench.run(config)
        truth = mock.ground_truth()
        stats = mock.stats()
    benchmark = report.benchmarks[0]
    assert benchmark.requests.successful == benchmark.requests.total == 8
    ttft = benchmark.metrics.ttft_ms
    assert ttft is not None and ttft.successful is not None
    p50 = ttft.successful.percentiles.p50
    assert 30 <= p50 <= 36, f"TTFT p50 {p50} ms for a mock with ttft_ms=30"
    itl = benchmark.metrics.itl_ms
    assert itl is not None and itl.successful is not None
    # Gaps between chunks as the client reads them: around 5 ms, either side.
    assert abs(itl.successful.percentiles.p50 - 5) < 1.5, itl.successful.percentiles

    assert len(truth) == benchmark.requests.total, "one record per request sent"
    assert stats["requests"] == len(truth)
    for record in truth:
        assert record["status"] == 200 and record["completed"] is True
        first = record["first_token_unix_us"] - record["arrival_unix_us"]
        assert 30_000 <= first < 40_000, record
        assert record["last_token_unix_us"] >= record["first_token_unix_us"]
        assert re.fullmatch(r"[0-9a-f]{8}-req-[0-9]+", record["request_id"]), record


def test_a_fault_spec_string_injects_errors() -> None:
    with llm_bench.MockServer(ttft_ms=2, itl_ms=1, faults=["http_500:p=0.5"], seed=7) as mock:
        config = make_config(
            streams=[2], max_requests=20, max_seconds=10,
            target={"url": mock.url, "model": mock.model},
        )
        report = llm_bench.run(config)
        faulted = [r for r in mock.ground_truth() if r["fault"]]
    totals = report.benchmarks[0].requests
    assert totals.total == 20
    assert 0 < totals.errored < 20, totals
    assert totals.successful + totals.errored == 20
    errors = report.benchmarks[0].errors
    assert [(e.kind, e.status_code) for e in errors] == [("http_status", 500)]
    assert errors[0].count == totals.errored == len(faulted)


def test_a_stopped_mock_says_so_and_a_bad_fault_is_a_config_error() -> None:
    mock = llm_bench.MockServer()
    mock.stop()
    mock.stop()  # idempotent
    try:
        mock.ground_truth()
    except RuntimeError as error:
        assert "stopped" in str(error)
    else:
        raise AssertionError("ground_truth of a stopped mock")
    raised: Any = None
    try:
        llm_bench.MockServer(faults=["http_500:p=two"])
    except llm_bench.ConfigError as error:
        raised = error
    assert raised is not None, "an invalid fault spec raises ConfigError"
    raised = None
    try:
        llm_bench.MockServer(ttft_msx=5)
    except llm_bench.ConfigError as error:
        raised = error
    assert raised is not None, "an unknown knob raises ConfigError"
