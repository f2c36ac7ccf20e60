"""The debugger's memory reads: ``read_memory`` against gdb-multiarch's ``dump memory``.

    python benchmarks/debugger.py ours|gdb ENDPOINT SIZE ROUNDS    # prints one RESULT line (MB/s, median)

Both read the same range of the same QEMU guest (the board's ``gdb_wait`` holds its CPU at
power on, so nothing boots) through the same gdbstub: ours through ``dut.debugger`` (the
exporter owns the stub's one connection), gdb through ``forward()``, as a user's gdb attaches.
The gdb side times the ``dump`` command alone, inside gdb (its start and attach not counted).
"""

from __future__ import annotations

import os
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
    with connect(endpoint) as root, tempfile.TemporaryDirectory(prefix="jmp-gdb-bench-") as folder:
        dut = root.dut
        _held(dut)
        out = os.path.join(folder, "dump.bin")
        dump = f"dump binary memory {out} {START:#x} {START + int(size):#x}"
        timed = ["python t = time.perf_counter()", dump, "python print('DUMPED', time.perf_counter() - t)"]
        with dut.debugger.forward() as address:
            argv = ["gdb-multiarch", "-q", "-nx", "-batch", "-ex", "python import time", "-ex", f"target remote {address}",
                    *[arg for _ in range(int(rounds)) for command in timed for arg in ("-ex", command)],
                    "-ex", "disconnect"]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=GDB_TIMEOUT, stdin=subprocess.DEVNULL)
        times = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("DUMPED ")]
        if len(times) != int(rounds) or os.path.getsize(out) != int(size):
            raise SystemExit(f"gdb-multiarch failed: {done.stdout[-500:]} {done.stderr[-500:]}")
        report(int(size) / statistics.median(times) / MB, seconds=statistics.median(times))


if __name__ == "__main__":
    {"ours": ours, "gdb": gdb}[sys.argv[1]](*sys.argv[2:])
