"""Running benchmarks: run, run_async, stream, validate and engines.

Every run goes on in a native thread that never holds the GIL. Its progress events are queued
in Rust and handed to Python here, on the caller's thread (or event loop), so a slow or failing
progress callback never touches the measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _native
from ._report import Report
from ._schema import ProgressEvent, Warning, progress_event_from_dict

__all__ = [
    "ConfigLike",
    "EngineInfo",
    "Plan",
    "PlannedBenchmark",
    "ProgressCallback",
    "engines",
    "run",
    "run_async",
    "stream",
    "validate",
]

logger = logging.getLogger("llm_bench")

#: A config: a dict (the TOML's keys, the legacy ``benchmark`` block included), a path to a
#: .toml/.yaml/.yml/.json file, or the text of one.
ConfigLike = Union[Mapping[str, Any], str, "os.PathLike[str]"]

#: Called with each progress event, on the thread that called ``run`` (or the event loop).
ProgressCallback = Callable[[ProgressEvent], None]

#: How often a blocking ``run`` wakes to deliver events and notice Ctrl-C, in seconds.
_WAKE_S = 0.1
#: How often ``run_async`` looks at the run, in seconds (a cheap call: no thread, no GIL wait).
_POLL_S = 0.02

_EXTENSIONS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_TOML_LINE = re.compile(r"^\s*(\[|[A-Za-z0-9_.\"-]+\s*=)", re.MULTILINE)


@dataclass(frozen=True)
class EngineInfo:
    """An engine compiled into this build, and what it can do."""

    name: str
    summary: str
    #: The profiles it runs (synchronous, concurrent, ...).
    profiles: List[str]
    #: The data kinds it reads (synthetic, scenario, file).
    data: List[str]
    #: The metrics it measures (fields of a benchmark's ``metrics``).
    metrics: List[str]
    #: The optional config keys it honours; a config using any other is refused.
    options: List[str]


@dataclass(frozen=True)
class PlannedBenchmark:
    """One benchmark a config asks for."""

    strategy: str
    workload: str


@dataclass(frozen=True)
class Plan:
    """What ``validate`` found: the engine, the benchmarks it would run, and the warnings."""

    engine: str
    benchmarks: List[PlannedBenchmark]
    warnings: List[Warning]
    #: Whether the target was checked (not offline, and not the embedded mock).
    target_checked: bool


def engines() -> List[EngineInfo]:
    """The engines compiled into this build, sorted by name."""
    found = []
    for entry in json.loads(_native.engines()):
        caps = entry.get("capabilities") or {}
        found.append(
            EngineInfo(
                name=entry["name"],
                summary=entry["summary"],
                profiles=list(caps.get("profiles", [])),
                data=list(caps.get("data", [])),
                metrics=list(caps.get("metrics", [])),
                options=list(caps.get("options", [])),
            )
        )
    return found


def validate(
    config: ConfigLike,
    *,
    overrides: Optional[Sequence[str]] = None,
    engine: Optional[str] = None,
    offline: bool = False,
) -> Plan:
    """Checks a config as ``llm-bench validate`` does, and returns its plan.

    Runs the engine's preflight: the tokenizer and data files, its command, the open-file
    limit, and (unless ``offline``, or the target is the embedded mock) whether the target
    answers as an OpenAI-compatible server. Raises ``ConfigError``, ``TargetError``,
    ``PrerequisiteError`` or ``EngineError``.
    """
    with _source(config) as (text, format, folder):
        found = json.loads(
            _native.validate(text, format, list(overrides or ()), folder, engine, offline)
        )
    return Plan(
        engine=found["engine"],
        benchmarks=[PlannedBenchmark(**b) for b in found["benchmarks"]],
        warnings=[Warning.from_dict(w) for w in found["warnings"]],
        target_checked=found["target_checked"],
    )


def run(
    config: ConfigLike,
    *,
    overrides: Optional[Sequence[str]] = None,
    engine: Optional[str] = None,
    progress: Optional[ProgressCallback] = None,
) -> Report:
    """Runs a benchmark to its end and returns the report. Blocks; the GIL is free meanwhile.

    ``overrides`` are ``key=value`` strings as ``--set`` takes (``"profile.rates=[5,10]"``);
    ``engine`` replaces ``benchmark_engine``. ``progress`` is called on this thread with each
    event; if it raises, the run goes on and the report warns (``progress_callback_failed``).

    Ctrl-C (KeyboardInterrupt) stops the run as SIGINT stops the CLI: the engine ends its
    benchmark within ``constraints.interrupt_grace_seconds`` and the partial report is
    returned with ``interrupted = True``; a second Ctrl-C while it ends raises at once.
    """
    delivery = _Delivery(progress)
    with _started(config, overrides, engine, progress is not None) as handle:
        try:
            while not handle.wait(_WAKE_S):
                delivery.deliver(handle.events())
        except KeyboardInterrupt:
            logger.warning("interrupted: stopping the run and returning what was measured")
            handle.cancel()
            while not handle.wait(_WAKE_S):
                delivery.deliver(handle.events())
        delivery.deliver(handle.events())
        return delivery.report(handle)


async def run_async(
    config: ConfigLike,
    *,
    overrides: Optional[Sequence[str]] = None,
    engine: Optional[str] = None,
    progress: Optional[ProgressCallback] = None,
) -> Report:
    """``run`` for asyncio: awaits the run without blocking the event loop.

    Cancelling the task (``task.cancel()``, ``asyncio.wait_for``, ``asyncio.timeout``) fires
    the engine's cancel token at once; the run ends within ``interrupt_grace_seconds`` and the
    coroutine returns the partial report with ``interrupted = True`` instead of raising
    CancelledError, so the figures are never lost. A second cancellation while it ends
    raises CancelledError at once.
    """
    delivery = _Delivery(progress)
    with _started(config, overrides, engine, progress is not None) as handle:
        try:
            while not handle.done():
                delivery.deliver(handle.events())
                await asyncio.sleep(_POLL_S)
        except asyncio.CancelledError:
            handle.cancel()
            while not handle.done():
                delivery.deliver(handle.events())
                await asyncio.sleep(_POLL_S)
        delivery.deliver(handle.events())
        return delivery.report(handle)


async def stream(
    config: ConfigLike,
    *,
    overrides: Optional[Sequence[str]] = None,
    engine: Optional[str] = None,
) -> AsyncIterator[Union[ProgressEvent, Report]]:
    """Yields the run's progress events as they happen, then its report (always last).

    What a WebSocket handler needs: ``async for item in llm_bench.stream(config)``. Leaving
    the loop early (``break``, an exception, cancellation) cancels the run.
    """
    with _started(config, overrides, engine, True) as handle:
        finished = False
        try:
            while True:
                done = handle.done()
                for text in handle.events():
                    yield progress_event_from_dict(json.loads(text))
                if done:
                    break
                await asyncio.sleep(_POLL_S)
            finished = True
            yield _Delivery(None).report(handle)
        finally:
            if not finished:
                handle.cancel()


class _Delivery:
    """Hands events to the caller's callback; a callback that raises is logged and counted,
    and the report says so."""

    def __init__(self, callback: Optional[ProgressCallback]) -> None:
        self.callback = callback
        self.failures = 0
        self.first_failure = ""

    def deliver(self, events: List[str]) -> None:
        if self.callback is None:
            return
        for text in events:
            try:
                self.callback(progress_event_from_dict(json.loads(text)))
            except Exception as error:  # noqa: BLE001 - any error of the caller's callback
                self.failures += 1
                if self.failures == 1:
                    self.first_failure = f"{type(error).__name__}: {error}"
                    logger.exception("the progress callback raised; the run goes on")

    def report(self, handle: _native.Run) -> Report:
        data: Dict[str, Any] = json.loads(handle.result())
        if self.failures:
            data.setdefault("warnings", []).append(
                {
                    "code": "progress_callback_failed",
                    "message": f"the progress callback raised {self.failures} time(s), first "
                    f"{self.first_failure}; the run went on and these figures are unaffected",
                }
            )
        dropped = handle.dropped_events()
        if dropped:
            data.setdefault("warnings", []).append(
                {
                    "code": "progress_events_dropped",
                    "message": f"{dropped} progress events were dropped because they were not "
                    "taken in time; the figures are unaffected",
                }
            )
        return Report.from_dict(data)


@contextlib.contextmanager
def _started(
    config: ConfigLike,
    overrides: Optional[Sequence[str]],
    engine: Optional[str],
    progress: bool,
) -> Iterator[_native.Run]:
    """Starts a run, and cancels it if the caller leaves before its end (its thread then
    ends on its own within the engine's grace; engines read data files before they start)."""
    with _source(config) as (text, format, folder):
        handle = _native.Run.start(text, format, list(overrides or ()), folder, engine, progress)
        try:
            yield handle
        finally:
            if not handle.done():
                handle.cancel()


@contextlib.contextmanager
def _source(config: ConfigLike) -> Iterator[Tuple[str, str, Optional[str]]]:
    """The config as (text, format, folder for its relative paths). Rows given in ``data``
    are written to a temporary JSON-lines file for the run's duration."""
    if isinstance(config, Mapping):
        with _rows_as_file(config) as converted:
            yield json.dumps(converted, default=_jsonable), "json", None
        return
    if isinstance(config, os.PathLike) or _looks_like_path(config):
        path = os.fspath(config)
        extension = os.path.splitext(path)[1].lower()
        format = _EXTENSIONS.get(extension)
        if format is None:
            from ._errors import ConfigError

            raise ConfigError(
                f"cannot tell the format of config file {path}: name it .toml, .yaml, .yml "
                "or .json"
            )
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            from ._errors import ConfigError

            raise ConfigError(f"cannot read config file {path}: {error}") from error
        yield text, format, os.path.dirname(os.path.abspath(path))
        return
    yield config, _format_of_text(config), None


def _jsonable(value: Any) -> Any:
    """Paths in a dict config become strings; anything else JSON cannot hold is refused."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    from ._errors import ConfigError

    raise ConfigError(
        f"a config value of type {type(value).__name__} cannot be used: give strings, "
        "numbers, booleans, lists and dicts (paths are converted)"
    )


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and (
        os.path.splitext(text)[1].lower() in _EXTENSIONS or os.path.isfile(text)
    )


def _format_of_text(text: str) -> str:
    """JSON if it starts with ``{``, TOML if a line is a table header or ``key = value``,
    else YAML."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "json"
    if _TOML_LINE.search(text):
        return "toml"
    return "yaml"


@contextlib.contextmanager
def _rows_as_file(config: Mapping[str, Any]) -> Iterator[Dict[str, Any]]:
    """``data`` as a list of rows (or ``{"kind": "file", "rows": [...], ...}``) becomes a
    file the engine reads; anything else passes through."""
    converted = dict(config)
    data = converted.get("data")
    if isinstance(data, list):
        data = {"kind": "file", "rows": data}
    if not (isinstance(data, Mapping) and "rows" in data):
        yield converted
        return
    data = dict(data)
    rows = data.pop("rows")
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        from ._errors import ConfigError

        raise ConfigError(
            "`data` rows must be a list of dicts, each with a prompt (or messages) and "
            "optionally an output length",
            key="data",
        )
    data.setdefault("kind", "file")
    with tempfile.TemporaryDirectory(prefix="llm-bench-rows-") as folder:
        path = os.path.join(folder, "rows.jsonl")
        with open(path, "w", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row))
                file.write("\n")
        data["path"] = path
        converted["data"] = data
        yield converted
