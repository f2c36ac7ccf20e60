"""Measuring loops shared by every side of the benchmark (ours, upstream, raw).

Standard library only: the upstream side imports this from upstream's own venv. Each side's
script prints one ``RESULT {json}`` line that ``run.py`` reads.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

MB = 1e6  # MB/s counts 10**6 bytes, one way (bytes echoed back per second)


def report(value: float, **extra: Any) -> None:
    """Print the machine-readable result line ``run.py`` parses."""
    print("RESULT " + json.dumps({"value": value, **extra}), flush=True)


def call_rate(call: Callable[[], Any], count: int, warmup: int = 50) -> float:
    """Calls per second of ``call()`` issued back to back, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    start = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - start)


def echo_rate(send: Callable[[bytes], Any], receive: Callable[[], bytes], total: int, chunk: int) -> float:
    """MB/s echoed: a thread sends ``total`` bytes in ``chunk`` writes while this one receives.

    Timed from the first write to the last echoed byte (pipelined, as the upstream baseline).
    """
    payload = bytes(range(256)) * (chunk // 256)
    send(b"w")  # warm-up round trip: the stream is open and echoing
    got = 0
    while got < 1:
        got += _received(receive())

    def sender() -> None:
        for _ in range(total // len(payload)):
            send(payload)

    start = time.perf_counter()
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    received = 0
    expected = total // len(payload) * len(payload)
    while received < expected:
        received += _received(receive())
    elapsed = time.perf_counter() - start
    thread.join()
    return received / elapsed / MB


def _received(data: bytes) -> int:
    if not data:
        raise EOFError("the stream ended before every byte was echoed")
    return len(data)


def concurrent_calls(
    clients: int, seconds: float, setup: Callable[[], Callable[[], Any]], channels: int = 1
) -> dict:
    """Aggregate rate and latency of ``clients`` processes calling back to back for ``seconds``.

    Each process (forked after the caller's imports, before any channel exists) runs
    ``channels`` threads; each runs ``setup()`` to connect (its own channel) and get its
    call, waits for the others, then calls and times each call. Returns calls/s over the
    whole window and the median and p99 latency in ms.
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients * channels + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker_process, args=(setup, seconds, barrier, results, channels), daemon=True
        )
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=120)
    outcomes = [results.get(timeout=seconds + 120) for _ in range(clients * channels)]
    for worker in workers:
        worker.join(timeout=30)
    failures = [o["error"] for o in outcomes if "error" in o]
    if failures:
        raise RuntimeError(f"{len(failures)} of {clients * channels} clients failed: {failures[0]}")
    latencies = [x for o in outcomes for x in o["latencies"]]
    window = max(o["end"] for o in outcomes) - min(o["start"] for o in outcomes)
    return {"calls_per_s": len(latencies) / window, **latencies_ms(latencies), "calls": len(latencies)}


def _worker_process(setup, seconds: float, barrier, results, channels: int) -> None:
    threads = [
        threading.Thread(target=_worker, args=(setup, seconds, barrier, results)) for _ in range(channels)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def latencies_ms(latencies: list[float]) -> dict:
    """Median and p99 of latencies in seconds, in ms."""
    ordered = sorted(latencies)
    return {
        "median_ms": statistics.median(ordered) * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
    }


def _worker(setup, seconds: float, barrier, results) -> None:
    try:
        call = setup()
        call()  # connected and warm before the clock starts
    except Exception as exc:
        barrier.wait(timeout=120)
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        return
    barrier.wait(timeout=120)
    latencies = []
    start = now = time.monotonic()  # system-wide clock: comparable across processes
    while now - start < seconds:
        call()
        done = time.monotonic()
        latencies.append(done - now)
        now = done
    results.put({"latencies": latencies, "start": start, "end": now})
