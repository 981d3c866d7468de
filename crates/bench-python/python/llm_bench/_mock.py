"""The mock OpenAI server, for a controller's own tests: precise timings, faults, no GPU."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Type, Union

from . import _native

__all__ = ["MockServer"]


class MockServer:
    """An OpenAI-compatible server whose timings are known, on 127.0.0.1 and a free port.

    The knobs are those of ``[target.mock]`` and ``llm-bench mock-server``
    (docs/mock-server.md); ``faults`` takes the CLI's ``--fault`` strings
    (``"http_500:p=0.1"``) or their tables. Use it as a context manager::

        with llm_bench.MockServer(ttft_ms=50, itl_ms=10) as mock:
            report = llm_bench.run({..., "target": {"url": mock.url, "model": mock.model}})
            truth = mock.ground_truth()
    """

    def __init__(
        self,
        *,
        model: str = "mock-model",
        ttft_ms: Optional[float] = None,
        itl_ms: Optional[float] = None,
        prefill_ms_per_token: Optional[float] = None,
        output_tokens: Optional[int] = None,
        max_batch: Optional[int] = None,
        slowdown: Optional[float] = None,
        max_queue: Optional[int] = None,
        seed: Optional[int] = None,
        faults: Optional[Sequence[Union[str, Mapping[str, Any]]]] = None,
        port: int = 0,
        **more: Any,
    ) -> None:
        settings: Dict[str, Any] = {"model": model, "port": port}
        given = {
            "ttft_ms": ttft_ms,
            "itl_ms": itl_ms,
            "prefill_ms_per_token": prefill_ms_per_token,
            "output_tokens": output_tokens,
            "max_batch": max_batch,
            "slowdown": slowdown,
            "max_queue": max_queue,
            "seed": seed,
        }
        settings.update({k: v for k, v in given.items() if v is not None})
        if faults is not None:
            settings["faults"] = [f if isinstance(f, str) else dict(f) for f in faults]
        settings.update(more)
        self.model = model
        self._server: Optional[_native.MockServer] = _native.MockServer(json.dumps(settings))

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``, ``https://`` with ``tls_cert``), for
        ``target.url``."""
        return self._running().url

    def stats(self) -> Dict[str, Any]:
        """Counters and token-timing precision (``GET /mock/stats``)."""
        value: Dict[str, Any] = json.loads(self._running().stats())
        return value

    def ground_truth(self) -> List[Dict[str, Any]]:
        """What the server did for each request (the first ``record_limit``): arrival,
        admission, first and last token times in Unix microseconds (every token's with
        ``token_times=True``), tokens, faults."""
        value: List[Dict[str, Any]] = json.loads(self._running().ground_truth())
        return value

    def stop(self) -> None:
        """Stops the server. Idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _running(self) -> _native.MockServer:
        if self._server is None:
            raise RuntimeError("the mock server was stopped")
        return self._server

    def __enter__(self) -> MockServer:
        return self

    def __exit__(
        self,
        kind: Optional[Type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()
