"""A benchmark controller for the autotuner, on llm-bench: a drop-in for its genai-bench one.

The autotuner tries server settings unattended. For each trial it starts the server with one
setting, calls the controller its config's `benchmark_engine` key selects with that config and
the server's address, and stores the metrics object the controller returns. This controller
takes the same config (the legacy `benchmark` block, docs/config.md) and returns the same
object genai-bench's results give (`report.to_autotuner()`, docs/report.md), so the autotuner's
store and analysis do not change.

What a controller must get right, unattended:
- a trial that fails because of the server under this setting (it is down, it does not answer
  as an OpenAI-compatible server, the engine cannot measure it) is a result: it is recorded as
  a failed trial and the study goes on;
- a bad task config or a missing prerequisite would fail every trial alike: it is raised, so
  the study stops at once instead of recording a hundred failures;
- an interrupted run (Ctrl-C) still returns what it measured, marked `interrupted`;
- warnings that say the client, not the server, set the figures are logged with the trial.

Run it with no arguments to benchmark a MockServer it starts itself (about 8 s):

    python examples/python/autotuner_controller.py
    python examples/python/autotuner_controller.py --url http://127.0.0.1:8000 --model my-model \
        --tokenizer /models/my-model
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Dict, List, Optional

import llm_bench

logger = logging.getLogger("autotuner.llm_bench")

#: Warnings that mean the benchmarking machine, not the server, may have set the figures
#: (docs/metrics.md): a trial carrying one should not be compared with the others as is.
CLIENT_LIMITED = {"client_bound", "client_cpu_saturated", "client_fd_limit", "prompts_built_late"}

#: The repository's small test tokenizer, which the mock counts prompts with too.
TEST_TOKENIZER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data",
                              "tokenizer")


def benchmark(config: Dict[str, Any], endpoint_url: str, model: str) -> Dict[str, Any]:
    """Runs one trial against `endpoint_url` and returns the autotuner's metrics object.

    `config` is the autotuner's task config: `benchmark_engine` (an llm-bench engine: `native`,
    or `genai-bench` to run the real genai-bench) and the legacy `benchmark` block, optionally
    with native keys beside it. A trial the server failed returns a failed-trial object (see
    `failed_trial`); `ConfigError`, `PrerequisiteError` and `Interrupted` are raised.
    """
    run_config = dict(config)
    target = dict(run_config.get("target") or {})
    target["url"] = endpoint_url
    # The legacy block names the model as `model_name`; it and `target.model` may not both be
    # given, so the served name fills in only when the block has none.
    if "model_name" not in (run_config.get("benchmark") or {}):
        target["model"] = model
    run_config["target"] = target
    try:
        report = llm_bench.run(run_config)
    except llm_bench.TargetError as error:
        # Nothing listens, or it is not an LLM server: this setting did not come up.
        logger.warning("trial failed: the server cannot be benchmarked: %s", error)
        return failed_trial("target", error.message)
    except llm_bench.PrerequisiteError:
        # A subclass of EngineError, but the machine's fault (a missing or wrong engine command).
        raise
    except llm_bench.EngineError as error:
        logger.warning("trial failed: the engine could not run: %s", error)
        return failed_trial("engine", error.message)

    for warning in report.warnings:
        logger.warning("run: %s: %s", warning.code, warning.message)
    for bench in report.benchmarks:
        number = bench.index + 1
        for warning in bench.warnings:
            logger.warning("benchmark %d: %s: %s", number, warning.code, warning.message)
            if warning.code in CLIENT_LIMITED:
                logger.warning("benchmark %d: the client may have set these figures", number)
        if bench.requests.successful == 0:
            # The CLI's exit code 4: a measurement of a failing server, kept as one.
            logger.warning("benchmark %d completed no successful request", number)
    if report.interrupted:
        logger.warning("the trial was interrupted: its metrics hold what was measured")
    return report.to_autotuner()


def failed_trial(kind: str, message: str) -> Dict[str, Any]:
    """A trial with no results, in the metrics object's shape plus `error`, so the autotuner
    stores it beside the others (a reader of genai-bench's shape ignores the extra key)."""
    return {
        "interrupted": False,
        "warnings": [],
        "num_result_files": 0,
        "raw_results": [],
        "max_output_throughput": None,
        "mean_output_throughput": None,
        "mean_tpot": None,
        "mean_ttft": None,
        "error": {"kind": kind, "message": message},
    }


def task_config(tokenizer: Optional[str]) -> Dict[str, Any]:
    """A task config as the autotuner writes it: three concurrency levels, 2 s each."""
    block: Dict[str, Any] = {
        "traffic_scenarios": ["D(128,32)"],
        "num_concurrency": [1, 4, 16],
        "max_time_per_iteration": 2,
        "max_requests_per_iteration": 2000,
        "max_error_rate": 0.5,
    }
    if tokenizer is not None:
        block["model_tokenizer"] = tokenizer
    config: Dict[str, Any] = {"benchmark_engine": "native", "benchmark": block}
    if tokenizer is None:
        # No tokenizer for this server: prompts of about one token per word (a warning says so).
        config["data"] = {"approximate": True}
    return config


def summary_lines(metrics: Dict[str, Any]) -> List[str]:
    """A few figures of the metrics object, read through its typed class."""
    typed = llm_bench.AutotunerMetrics.from_dict(metrics)
    lines = []
    for result in typed.raw_results:
        ttft = result.stats.ttft
        lines.append(
            f"  concurrency {result.num_concurrency}: {result.num_completed_requests} ok, "
            f"{result.num_error_requests} errors, TTFT p50 "
            + (f"{ttft.p50 * 1000:.1f} ms" if ttft is not None else "-")
            + f", {result.mean_output_throughput_tokens_per_s or 0:.0f} output tokens/s"
        )
    if typed.mean_ttft is not None and typed.mean_tpot is not None:
        lines.append(
            f"mean TTFT {typed.mean_ttft * 1000:.1f} ms, mean TPOT {typed.mean_tpot * 1000:.2f} ms"
        )
    if typed.max_output_throughput is not None:
        lines.append(f"max output throughput {typed.max_output_throughput:.0f} tokens/s")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="the server (default: a MockServer started here)")
    parser.add_argument("--model", default="mock-model", help="the served model name")
    parser.add_argument("--tokenizer", help="the server's tokenizer.json or its folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    mock: Optional[llm_bench.MockServer] = None
    url: str = args.url
    tokenizer: Optional[str] = args.tokenizer
    if args.url is None:
        tokenizer = tokenizer or TEST_TOKENIZER
        # A small GPU server: a batch of 8 whose token gaps grow as it fills.
        mock = llm_bench.MockServer(
            model=args.model, ttft_ms=30, itl_ms=5, max_batch=8, slowdown=1.0, tokenizer=tokenizer
        )
        url = mock.url
    try:
        metrics = benchmark(task_config(tokenizer), url, args.model)
    except (llm_bench.ConfigError, llm_bench.PrerequisiteError) as error:
        print(f"the study cannot go on: {error}", file=sys.stderr)
        return 2
    except llm_bench.Interrupted:
        print("interrupted before anything was measured", file=sys.stderr)
        return 130
    finally:
        if mock is not None:
            mock.stop()

    if "error" in metrics:
        print(f"failed trial ({metrics['error']['kind']}): {metrics['error']['message']}")
        return 0
    interrupted = " (interrupted)" if metrics["interrupted"] else ""
    print(f"{metrics['num_result_files']} benchmarks{interrupted}")
    for line in summary_lines(metrics):
        print(line)
    return 130 if metrics["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
