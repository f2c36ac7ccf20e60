"""The debugger's memory reads: ``read_memory`` against gdb-multiarch's ``dump memory``.

    python benchmarks/debugger.py ours|gdb|raw-gdb ENDPOINT SIZE ROUNDS    # one RESULT line (MB/s, median)

Both read the same range of the same QEMU guest (the board's ``gdb_wait`` holds its CPU at
power on, so nothing boots) through the same gdbstub: ours through ``dut.debugger`` (the
exporter owns the stub's one connection), gdb through ``forward()``, as a user's gdb attaches.
The gdb side times the ``dump`` command alone, inside gdb (its start and attach not counted).
The raw ceiling, ``raw-gdb``, is gdb on a QEMU of its own, held the same way, with nothing between.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import MB, report  # noqa: E402

from jumpstarter_jupyter import connect  # noqa: E402

START = 0x100000  # where QEMU loads the kernel: real bytes to read before anything runs
GDB_TIMEOUT = 300


def _held(dut) -> None:
    """The board on and its CPU held (by gdb_wait) at the first instruction."""
    if not dut.power.state():
        dut.power.on()
    dut.debugger.wait_for_stop(60)


def ours(endpoint: str, size: str, rounds: str) -> None:
    with connect(endpoint) as root:
        dut = root.dut
        _held(dut)
        times = []
        for _ in range(int(rounds)):
            began = time.perf_counter()
            data = dut.debugger.read_memory(START, int(size))
            times.append(time.perf_counter() - began)
            assert len(data) == int(size)
        report(int(size) / statistics.median(times) / MB, seconds=statistics.median(times))


def gdb(endpoint: str, size: str, rounds: str) -> None:
    with connect(endpoint) as root:
        dut = root.dut
        _held(dut)
        with dut.debugger.forward() as address:
            _gdb_dump(address, int(size), int(rounds))


def raw_gdb(_endpoint: str, size: str, rounds: str) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    qemu = subprocess.Popen(
        [
            "qemu-system-x86_64",
            "-M",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "256M",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-gdb",
            f"tcp:127.0.0.1:{port}",
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # QEMU's start-up: no event says when its gdbstub listens
        _gdb_dump(f"127.0.0.1:{port}", int(size), int(rounds))
    finally:
        qemu.kill()
        qemu.wait()


def _gdb_dump(address: str, size: int, rounds: int) -> None:
    """gdb-multiarch attached to ``address`` dumps the range ``rounds`` times; the median."""
    with tempfile.TemporaryDirectory(prefix="jmp-gdb-bench-") as folder:
        out = os.path.join(folder, "dump.bin")
        dump = f"dump binary memory {out} {START:#x} {START + size:#x}"
        timed = ["python t = time.perf_counter()", dump, "python print('DUMPED', time.perf_counter() - t)"]
        argv = [
            "gdb-multiarch",
            "-q",
            "-nx",
            "-batch",
            "-ex",
            "python import time",
            "-ex",
            f"target remote {address}",
            *[arg for _ in range(rounds) for command in timed for arg in ("-ex", command)],
            "-ex",
            "disconnect",
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=GDB_TIMEOUT, stdin=subprocess.DEVNULL
        )
        times = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("DUMPED ")]
        if len(times) != rounds or os.path.getsize(out) != size:
            raise SystemExit(f"gdb-multiarch failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    report(size / statistics.median(times) / MB, seconds=statistics.median(times))


if __name__ == "__main__":
    {"ours": ours, "gdb": gdb, "raw-gdb": raw_gdb}[sys.argv[1]](*sys.argv[2:])
