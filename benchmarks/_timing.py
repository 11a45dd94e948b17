"""The one timing rule of the suite: contenders run interleaved (a, b, c, a, b, c, …) so that a change in
machine load hits every one alike, and each is reported by the median of its runs (a best-of favours whoever
got the one quiet moment). Ratios are taken between these medians.

Imported as ``benchmarks._timing`` (``python -m benchmarks.<script>``, or ``run.py``, which puts the
repository on ``PYTHONPATH``) or as ``_timing`` when a script is run as a file."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def interleaved(fns: Sequence[Callable[[], Any]], repeat: int) -> list[tuple[float, Any]]:
    """(median seconds, last result) of each function over ``repeat`` interleaved rounds."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1. Got {repeat!r} instead.")
    times: list[list[float]] = [[] for _ in fns]
    outs: list[Any] = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()  # garbage of the previous contender is not this one's cost
            t0 = time.perf_counter()
            outs[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return [(statistics.median(t), out) for t, out in zip(times, outs, strict=True)]


def once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """One timed run (for a slow reference timed only to show a scale, never for a goal's ratio)."""
    ((t, out),) = interleaved([fn], 1)
    return t, out


def wait_until_serving(proc, port: int, timeout: float = 60.0) -> None:
    """Block until ``modelreg serve`` (``proc``) answers its OpenAPI document on ``port``; raise with the end
    of its stderr if it exits or does not answer within ``timeout`` seconds."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"modelreg serve did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
