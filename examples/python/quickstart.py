"""llm_bench in five lines: a 5-second benchmark of the embedded mock server (no `target`)."""

import llm_bench

report = llm_bench.run({"profile": {"kind": "concurrent", "streams": [4]},
                        "constraints": {"max_seconds": 5},
                        "data": {"kind": "synthetic", "prompt_tokens": 128, "output_tokens": 32,
                                 "approximate": True}})  # no tokenizer: prompts of common words
metrics = report.benchmarks[0].metrics
assert metrics.ttft_ms and metrics.ttft_ms.successful and metrics.rates.output_tokens_per_s
print(f"TTFT p50 {metrics.ttft_ms.successful.p50:.1f} ms, "
      f"{metrics.rates.output_tokens_per_s.successful:.0f} output tokens/s")
