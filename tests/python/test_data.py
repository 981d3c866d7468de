"""`data` given as rows from Python."""

from __future__ import annotations

from typing import Any, Dict, List

import llm_bench
from conftest import make_config


def test_rows_of_prompts_are_sent() -> None:
    rows: List[Dict[str, Any]] = [
        {"prompt": f"Say something about the number {i}.", "output_tokens": 4} for i in range(4)
    ]
    rows.append({"messages": [{"role": "user", "content": "Hello there"}], "output_tokens": 4})
    config = make_config(streams=[2], max_requests=7, max_seconds=10, data=rows)
    report = llm_bench.run(config)
    benchmark = report.benchmarks[0]
    assert benchmark.requests.total == 7, benchmark.requests
    assert benchmark.requests.successful == 7, benchmark.requests
    assert benchmark.stopped_by == "max_requests"
    output = benchmark.metrics.output_tokens
    assert output is not None and output.successful is not None
    assert output.successful.min == output.successful.max == 4, "each row's output length"
    codes = [w.code for w in report.warnings] + [w.code for w in benchmark.warnings]
    assert "data_rows_skipped" not in codes, codes
    assert report.config.data is not None and report.config.data.kind == "file"


def test_rows_in_a_data_table_keep_its_other_keys() -> None:
    rows = [{"prompt": "one two three"}, {"prompt": "four five six"}]
    config = make_config(
        streams=[1], max_requests=3, max_seconds=10, data={"rows": rows, "output_tokens": 3}
    )
    benchmark = llm_bench.run(config).benchmarks[0]
    assert benchmark.requests.successful == 3
    output = benchmark.metrics.output_tokens
    assert output is not None and output.successful is not None
    assert output.successful.max == 3, "data.output_tokens overrides the rows"
