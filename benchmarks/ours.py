"""Our side: each figure through jumpstarter-jupyter's own Python client (run in .venv).

    python benchmarks/ours.py FIGURE ENDPOINT [ARGS]    # prints one RESULT line

Figures: unary COUNT | echo CHILD TOTAL CHUNK | flash FILE | connect | concurrent CLIENTS SECONDS
| flood SECONDS (the serial widget displayed in a real kernel while the console floods)
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import MB, call_rate, concurrent_calls, echo_rate, report  # noqa: E402

from jumpstarter_jupyter import connect  # noqa: E402


def unary(endpoint: str, count: str) -> None:
    with connect(endpoint) as dut:
        report(call_rate(dut.power.on, int(count)))


def echo(endpoint: str, child: str, total: str, chunk: str) -> None:
    with connect(endpoint) as dut, dut[child].stream("connect") as stream:
        report(echo_rate(stream.send, stream.receive, int(total), int(chunk)))


def flash(endpoint: str, path: str) -> None:
    with connect(endpoint) as dut:
        start = time.perf_counter()
        dut.storage.flash(path)
        report(os.path.getsize(path) / (time.perf_counter() - start) / MB)


def connect_time(endpoint: str) -> None:
    """Milliseconds from ``connect()`` until it returns the client tree."""
    start = time.perf_counter()
    dut = connect(endpoint)
    elapsed = time.perf_counter() - start
    with dut:
        report(elapsed * 1e3, drivers=sum(1 for _ in dut.walk()))


def concurrent(endpoint: str, clients: str, seconds: str) -> None:
    def setup():
        return connect(endpoint).power.on

    result = concurrent_calls(int(clients), float(seconds), setup)
    report(result.pop("calls_per_s"), **result)


def flood(endpoint: str, seconds: str) -> None:
    from flood import measure_flood  # jupyter_client: only this figure needs it

    result = measure_flood(endpoint, float(seconds))
    report(result.pop("msgs_per_s"), **result)


FIGURES = {"unary": unary, "echo": echo, "flash": flash, "connect": connect_time, "concurrent": concurrent,
           "flood": flood}

if __name__ == "__main__":
    FIGURES[sys.argv[1]](*sys.argv[2:])
