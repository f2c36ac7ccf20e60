"""The CAN figures, one procedure for both sides' clients (each a python-can ``BusABC``).

Standard library plus python-can, which both venvs have. The exporter serves ``can`` and
``can_source``, two ``Can`` nodes on one virtual channel: frames originate in the exporter.

1. Latency: ``count`` round trips of ``can_source.send(frame)`` until ``can.recv()`` returns it.
2. Rate: ``can_source`` sends back to back for ``burst`` seconds (a periodic task with
   period 0, on the exporter), then a marker, while the client receives everything up to
   the marker. Frames/s from the first frame to the marker (so a client slower than the
   source is measured while it works off what queued up); the CPU seconds the client process
   and the exporter's process group spent meanwhile, per 10 000 frames received.
"""

from __future__ import annotations

import os
import threading
import time

import can
from measure import latencies_ms

MARKER = 0x7FF
TICKS = os.sysconf("SC_CLK_TCK")


def frame(ident: int, data: bytes = b"") -> can.Message:
    return can.Message(arbitration_id=ident, data=data, is_extended_id=False)


def measure_can(bus, source, count: int, burst: float, exporter_group: int) -> dict:
    """Latency (ms), then frames/s and CPU s per 10 000 frames of a burst; see the module doc."""
    latencies = [_round_trip(bus, source, frame(0x100, n.to_bytes(4, "big"))) for n in range(count)]
    cpu = _cpu(exporter_group)
    task = source.send_periodic(frame(0x200, bytes(8)), period=0.0, duration=burst)
    threading.Thread(target=_end_burst, args=(source, task, burst), daemon=True).start()
    first = bus.recv(10)
    start, received = time.perf_counter(), 1
    while (msg := bus.recv(10)) is not None and msg.arbitration_id != MARKER:
        received += 1
    elapsed = time.perf_counter() - start
    cpu = _cpu(exporter_group) - cpu
    if first is None or msg is None:
        raise RuntimeError("the burst's frames stopped arriving before its marker")
    return {
        "frames_per_s": received / elapsed,
        "frames": received,
        "missed": getattr(bus, "missed", 0),
        "cpu_per_10k": cpu / received * 10_000,
        **latencies_ms(latencies),
    }


def _end_burst(source, task, burst: float) -> None:
    time.sleep(burst)  # the burst's length: the source sends meanwhile
    task.stop()
    source.send(frame(MARKER))


def _round_trip(bus, source, sent: can.Message) -> float:
    """Seconds from send on the source until the client received that frame (strays skipped)."""
    start = time.perf_counter()
    source.send(sent)
    while (got := bus.recv(10)) is not None and bytes(got.data) != bytes(sent.data):
        pass
    if got is None:
        raise RuntimeError(f"{sent} did not arrive within 10 s")
    return time.perf_counter() - start


def _cpu(group: int) -> float:
    """CPU seconds so far of this process plus every process in ``group``."""
    total = time.process_time()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == group:  # pgrp
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    return total
