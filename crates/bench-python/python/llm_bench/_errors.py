"""The exceptions of llm_bench: one base class, and one class per kind of failure.

A failing server is not an exception: its failures are counted in the report. These mean that
a run could not be configured, could not start, or could not go on.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "ConfigError",
    "EngineError",
    "Error",
    "Interrupted",
    "PrerequisiteError",
    "TargetError",
]


class Error(Exception):
    """Base class of every llm_bench error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(Error):
    """The config cannot be used as given (the CLI's exit code 2).

    ``key`` is the dotted config key at fault (``"profile.rates"``) when there is one, and
    ``suggestion`` the closest valid key or value when one is close to what was given.
    """

    def __init__(
        self, message: str, key: Optional[str] = None, suggestion: Optional[str] = None
    ) -> None:
        super().__init__(message)
        self.key = key
        self.suggestion = suggestion


class EngineError(Error):
    """The engine failed before it could measure anything (the CLI's exit code 1)."""


class TargetError(EngineError):
    """The target is unreachable or does not answer as an OpenAI-compatible server (exit 5).

    Nothing was measured; the message says what was asked, what came back and what to check.
    """


class PrerequisiteError(EngineError):
    """A local prerequisite is missing: an engine's command, its version, a system limit."""


class Interrupted(Error):
    """The run was cancelled during its preflight, before the engine started: nothing was
    measured.

    A run cancelled once its engine has started is not an error: ``run`` and ``run_async``
    return its partial report, with ``interrupted`` set (docs/python.md), even if no
    benchmark had begun.
    """
