"""Console flood into a displayed terminal, measured from outside a real kernel.

The kernel connects to the exporter and displays ``dut.serial`` (the terminal widget) while
the board's console prints without pause. From the client side of the kernel protocol we
count the widget's comm messages on IOPub, read the kernel's RSS from /proc, and time a
trivial cell issued every ``CELL_PERIOD`` seconds.
"""

from __future__ import annotations

import collections
import queue
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

SETUP = """
from jumpstarter_jupyter import connect
dut = connect({endpoint!r})
display(dut.serial)
"""
CELL_PERIOD = 0.2  # seconds between trivial cells
POLL = 0.005  # seconds: the resolution of the cell latencies


def measure_flood(endpoint: str, seconds: float) -> dict:
    """Comm msgs/s of the busiest widget, kernel RSS growth (MB) and cell latency p50/p99 (ms)."""
    with tempfile.TemporaryDirectory(prefix="jmp-flood-") as cwd:  # the widget's log file goes here
        manager, client = start_new_kernel(cwd=cwd)
        try:
            reply = client.execute_interactive(
                SETUP.format(endpoint=endpoint), timeout=60, output_hook=lambda m: None
            )
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"kernel setup failed: {reply['content'].get('evalue')}")
            return _observe(client, manager.provisioner.process.pid, seconds)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def _observe(client, pid: int, seconds: float) -> dict:
    comms: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    rss_start = _rss(pid)
    start = time.monotonic()
    pending: tuple[str, float] | None = None
    next_cell = start
    while (now := time.monotonic()) - start < seconds or pending:
        if pending is None and now >= next_cell and now - start < seconds:
            pending = (client.execute("x = 1", store_history=False), now)
        _count_comm_msgs(client, comms)
        if pending is not None and _replied(client, pending[0]):
            latencies.append(time.monotonic() - pending[1])
            next_cell = time.monotonic() + CELL_PERIOD
            pending = None
    elapsed = time.monotonic() - start
    latencies.sort()
    return {
        "msgs_per_s": max(comms.values(), default=0) / elapsed,
        "rss_growth_mb": (_rss(pid) - rss_start) / 1e6,
        "cell_median_ms": statistics.median(latencies) * 1e3,
        "cell_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
        "cells": len(latencies),
    }


def _count_comm_msgs(client, comms: collections.Counter) -> None:
    try:
        message = client.get_iopub_msg(timeout=POLL)
    except queue.Empty:
        return
    if message["msg_type"] == "comm_msg":
        comms[message["content"]["comm_id"]] += 1


def _replied(client, msg_id: str) -> bool:
    try:
        reply = client.get_shell_msg(timeout=0)
    except queue.Empty:
        return False
    return reply["parent_header"].get("msg_id") == msg_id


def _rss(pid: int) -> int:
    """Resident set size in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
