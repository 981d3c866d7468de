"""llm_bench: benchmark LLM inference servers from Python, with llm-bench's compiled engines.

    import llm_bench
    report = llm_bench.run("bench.toml")
    print(report.benchmarks[0].metrics.ttft_ms.successful.p50)

See docs/python.md for the whole API.
"""

from ._api import (
    ConfigLike,
    EngineInfo,
    Plan,
    PlannedBenchmark,
    ProgressCallback,
    engines,
    run,
    run_async,
    stream,
    validate,
)
from ._errors import (
    ConfigError,
    EngineError,
    Error,
    Interrupted,
    PrerequisiteError,
    TargetError,
)
from ._mock import MockServer
from ._native import SCHEMA_VERSION
from ._report import Report
from ._schema import (
    AutotunerMetrics,
    Benchmark,
    BenchmarkFinishedEvent,
    BenchmarkStartedEvent,
    Distribution,
    Metrics,
    ProgressEvent,
    ProgressUpdate,
    RequestTotals,
    UpdateEvent,
    Warning,
)

# Errors and the report read as llm_bench.X in tracebacks and reprs, where users find them.
for _public in (ConfigError, EngineError, Error, Interrupted, PrerequisiteError, TargetError):
    _public.__module__ = __name__
Report.__module__ = __name__
del _public

__all__ = [
    "SCHEMA_VERSION",
    "AutotunerMetrics",
    "Benchmark",
    "BenchmarkFinishedEvent",
    "BenchmarkStartedEvent",
    "ConfigError",
    "ConfigLike",
    "Distribution",
    "EngineError",
    "EngineInfo",
    "Error",
    "Interrupted",
    "Metrics",
    "MockServer",
    "Plan",
    "PlannedBenchmark",
    "PrerequisiteError",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressUpdate",
    "Report",
    "RequestTotals",
    "TargetError",
    "UpdateEvent",
    "Warning",
    "engines",
    "run",
    "run_async",
    "stream",
    "validate",
]
