"""Upstream's side: each figure through upstream Jumpstarter 0.9.0's own Python client.

Runs with the upstream peer venv's python inside ``jmp shell --tls-grpc … -- python
upstream.py FIGURE [ARGS]`` (which sets ``JUMPSTARTER_HOST``), and prints one RESULT line.

Figures: unary COUNT | echo CHILD TOTAL CHUNK | flash FILE | connect | concurrent CLIENTS SECONDS
| can COUNT BURST GROUP (CAN latency, then a burst's frames/s and CPU; see can_bus.py)
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jumpstarter.utils.env import env  # noqa: E402
from measure import MB, call_rate, concurrent_calls, echo_rate, report  # noqa: E402


def unary(count: str) -> None:
    with env() as client:
        report(call_rate(client.power.on, int(count)))


def echo(child: str, total: str, chunk: str) -> None:
    with env() as client, getattr(client, child).stream() as stream:
        report(echo_rate(stream.send, stream.receive, int(total), int(chunk)))


def flash(path: str) -> None:
    with env() as client:
        start = time.perf_counter()
        client.storage.flash(path)
        report(os.path.getsize(path) / (time.perf_counter() - start) / MB)


def connect_time() -> None:
    """Milliseconds for ``env()`` to give a client tree."""
    start = time.perf_counter()
    with env() as client:
        elapsed = time.perf_counter() - start
        report(elapsed * 1e3, drivers=1 + _count(client))


def _count(client) -> int:
    children = getattr(client, "children", {}) or {}
    return sum(1 + _count(child) for child in children.values())


_OPEN = contextlib.ExitStack()  # a worker's env() stays open until its process exits


def concurrent(clients: str, seconds: str) -> None:
    def setup():
        return _OPEN.enter_context(env()).power.on

    result = concurrent_calls(int(clients), float(seconds), setup)
    report(result.pop("calls_per_s"), **result)


def can_bus(count: str, burst: str, group: str) -> None:
    from can_bus import measure_can

    with env() as client:
        # no can.shutdown(): upstream's sends `shutdown`, which closes the exporter's bus for everyone
        result = measure_can(client.can, client.can_source, int(count), float(burst), int(group))
    report(result.pop("frames_per_s"), **result)


FIGURES = {
    "can": can_bus,
    "unary": unary,
    "echo": echo,
    "flash": flash,
    "connect": connect_time,
    "concurrent": concurrent,
}

if __name__ == "__main__":
    FIGURES[sys.argv[1]](*sys.argv[2:])
