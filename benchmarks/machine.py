"""What the numbers were measured on: they only mean something next to this."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path


def describe(peer: Path | None) -> dict:
    """The date, CPU, cores, memory, OS, Pythons and grpcio versions (of upstream's venv ``peer`` too)."""
    machine = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "grpcio_ours": version("grpcio"),
    }
    if peer is not None:
        machine["grpcio_upstream"] = _peer_version(peer, "grpcio")
        machine["jumpstarter_upstream"] = _peer_version(peer, "jumpstarter")
    return machine


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _peer_version(peer: Path, package: str) -> str:
    code = f"from importlib.metadata import version; print(version({package!r}))"
    done = subprocess.run([str(peer / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    print(describe(Path(sys.argv[1])))
