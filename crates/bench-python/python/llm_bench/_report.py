"""The report: the generated, typed schema classes plus loading, writing and rendering."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Union

from . import _native, _schema

__all__ = ["Report"]

PathLike = Union[str, "os.PathLike[str]"]


class Report(_schema.Report):
    """The result of a run, typed all the way down (the same schema as the JSON report).

    ``report.benchmarks[0].metrics.ttft_ms.successful.p50``; ``report.to_dict()`` is the JSON
    object, ``report.write("out.csv")`` writes any format the CLI writes.
    """

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Builds a report from its JSON object, ignoring unknown keys; raises ValueError
        naming the dotted path of a missing key or a value of the wrong type."""
        report = super().from_dict(data)
        # The generated parser builds `cls`, so this is the subclass.
        assert isinstance(report, Report)
        return report

    @classmethod
    def load(cls, path: PathLike) -> Report:
        """Reads a saved report: YAML by its extension (.yaml, .yml), JSON otherwise."""
        return cls.from_json(_native.load_report(os.fspath(path)))

    @classmethod
    def from_json(cls, text: str) -> Report:
        """Builds a report from its JSON text."""
        return cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        """The report as JSON text, as the CLI writes it."""
        return json.dumps(self.to_dict())

    def write(self, path: PathLike, format: Optional[str] = None) -> None:
        """Writes the report atomically, in the format the extension names (.json, .yaml, .csv,
        .html; or ``format``: json, yaml, csv, html, autotuner), as ``[[output]]`` does."""
        _native.write_report(self.to_json(), os.fspath(path), format)

    def render(self, format: str = "summary") -> str:
        """The report as text: summary (the console table), json, yaml, csv, html, autotuner."""
        return _native.render(self.to_json(), format)

    def to_autotuner(self) -> Dict[str, Any]:
        """The autotuner's metrics object (docs/report.md), as a dict."""
        value: Dict[str, Any] = json.loads(self.render("autotuner"))
        return value
