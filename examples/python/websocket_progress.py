"""Live progress to a browser, the way a WebSocket handler would forward it.

Two tasks share an asyncio.Queue: the run task puts each progress event on it as it happens,
then the report; the socket task takes them off and "sends" each as one compact JSON message
(printed here, one line each). With a real WebSocket library, `send` is its `await ws.send(...)`.

The run task uses `run_async(config, progress=queue.put_nowait)`: the callback runs on the event
loop's thread (never on the engine's), so `put_nowait` needs no `call_soon_threadsafe`.
`--stream` uses `llm_bench.stream(config)` instead, which yields the same events and then the
report. `--cancel-after 2` cancels the run task after 2 s, as a "stop" button would: `run_async`
then returns the partial report with `interrupted = True` (`stream` yields no report: leaving
it cancels the run).

Run it with no arguments to benchmark a MockServer it starts itself (about 7 s):

    python examples/python/websocket_progress.py
    python examples/python/websocket_progress.py --cancel-after 2
    python examples/python/websocket_progress.py --url http://127.0.0.1:8000 --model my-model
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Dict, List, Optional, Union

import llm_bench

#: What goes through the queue: progress events, then the report.
Item = Union[llm_bench.ProgressEvent, llm_bench.Report]


def config_for(url: str, model: str) -> Dict[str, Any]:
    """Two concurrency levels, 3 s each."""
    return {
        "target": {"url": url, "model": model},
        "profile": {"kind": "concurrent", "streams": [2, 8]},
        "constraints": {"max_seconds": 3},
        "data": {"kind": "synthetic", "prompt_tokens": 128, "output_tokens": 32,
                 "approximate": True},
    }


async def run_with_callback(config: Dict[str, Any], queue: asyncio.Queue[Item]) -> None:
    """The run task: events through the progress callback, then the report."""
    report = await llm_bench.run_async(config, progress=queue.put_nowait)
    queue.put_nowait(report)


async def run_with_stream(config: Dict[str, Any], queue: asyncio.Queue[Item]) -> None:
    """The run task, written with `stream`: events, then the report (always last)."""
    async for item in llm_bench.stream(config):
        queue.put_nowait(item)


def message(item: Item) -> Dict[str, Any]:
    """One event (or the report) as the JSON message a browser would get."""
    if isinstance(item, llm_bench.Report):
        return {
            "event": "report",
            "interrupted": item.interrupted,
            "benchmarks": len(item.benchmarks),
            "warnings": [w.code for w in item.warnings],
        }
    if isinstance(item, llm_bench.BenchmarkStartedEvent):
        return {"event": item.event, "index": item.index, "of": item.of,
                "strategy": item.strategy.kind}
    if isinstance(item, llm_bench.UpdateEvent):
        return {
            "event": item.event,
            "index": item.index,
            "phase": item.phase,
            "requests": item.requests.total,
            "ttft_p50_ms": item.ttft_p50_ms,
        }
    # BenchmarkFinishedEvent: the whole benchmark, typed.
    ttft = item.benchmark.metrics.ttft_ms
    p50: Optional[float] = None
    if ttft is not None and ttft.successful is not None:
        p50 = ttft.successful.p50
    return {
        "event": item.event,
        "index": item.index,
        "requests": item.benchmark.requests.total,
        "ttft_p50_ms": p50,
    }


async def socket(queue: asyncio.Queue[Item], sent: List[str]) -> None:
    """The WebSocket side: sends every item until the report."""
    while True:
        item = await queue.get()
        text = json.dumps(message(item), separators=(",", ":"))
        sent.append(text)
        print(text, flush=True)  # await websocket.send(text)
        if isinstance(item, llm_bench.Report):
            return


async def serve(config: Dict[str, Any], use_stream: bool, cancel_after: Optional[float]) -> int:
    queue: asyncio.Queue[Item] = asyncio.Queue()
    sent: List[str] = []
    produce = run_with_stream if use_stream else run_with_callback
    runner = asyncio.ensure_future(produce(config, queue))
    sender = asyncio.ensure_future(socket(queue, sent))
    if cancel_after is not None:
        asyncio.get_running_loop().call_later(cancel_after, runner.cancel)
    try:
        await runner
    except asyncio.CancelledError:
        # Only `stream` gets here: its run was cancelled and there is no report to send.
        sender.cancel()
        print(f"cancelled after {cancel_after} s: stream() yields no report; "
              f"{len(sent)} messages sent")
        return 0
    await sender
    report = json.loads(sent[-1])
    if report["interrupted"]:
        print(f"cancelled after {cancel_after} s: the returned report is interrupted, "
              f"with {report['benchmarks']} benchmark(s)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Forward a run's progress as JSON messages.")
    parser.add_argument("--url", help="the server (default: a MockServer started here)")
    parser.add_argument("--model", default="mock-model", help="the served model name")
    parser.add_argument("--stream", action="store_true",
                        help="use llm_bench.stream instead of run_async")
    parser.add_argument("--cancel-after", type=float, metavar="SECONDS",
                        help="cancel the run task after this long")
    args = parser.parse_args(argv)

    if args.url is not None:
        return asyncio.run(serve(config_for(args.url, args.model), args.stream, args.cancel_after))
    # A small server: a batch of 4 whose token gaps grow as it fills, so 8 streams queue.
    with llm_bench.MockServer(ttft_ms=40, itl_ms=8, max_batch=4, slowdown=1.0) as mock:
        return asyncio.run(serve(config_for(mock.url, mock.model), args.stream, args.cancel_after))


if __name__ == "__main__":
    sys.exit(main())
