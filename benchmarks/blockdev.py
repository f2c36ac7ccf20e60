"""The raw ceiling of flashing a block device: ``dd bs=4M oflag=direct conv=fsync``.

    python benchmarks/blockdev.py dd IMAGE DEVICE    # prints one RESULT line (MB/s)

Run on the exporter's host against the same loop device our exporter writes, in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import MB, report  # noqa: E402


def dd(image: str, device: str) -> None:
    start = time.perf_counter()
    subprocess.run(
        ["dd", f"if={image}", f"of={device}", "bs=4M", "oflag=direct", "conv=fsync", "status=none"],
        check=True,
    )
    report(os.path.getsize(image) / (time.perf_counter() - start) / MB)


if __name__ == "__main__":
    {"dd": dd}[sys.argv[1]](*sys.argv[2:])
