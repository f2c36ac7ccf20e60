"""A serial device that floods: a pty whose far end prints text lines at a fixed byte rate.

    python benchmarks/flood_source.py BYTES_PER_S    # prints "serving /dev/pts/N", floods until stdin closes

Our exporter's PySerial opens the pty like any serial port (the console-flood measurement).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tty

TICK = 0.01  # seconds between writes: 100 writes/s of rate/100 bytes each


def flood(fd: int, rate: int) -> None:
    """Write numbered text lines at ``rate`` bytes/s, never bursting to catch up."""
    per_tick = max(1, int(rate * TICK))
    line, text = 0, b""
    deadline = time.monotonic()
    while True:
        while len(text) < per_tick:
            text += b"flood line %08d: the quick brown fox jumps over the lazy dog\r\n" % line
            line += 1
        os.write(fd, text[:per_tick])
        text = text[per_tick:]
        deadline = max(deadline + TICK, time.monotonic())
        time.sleep(max(0.0, deadline - time.monotonic()))  # pacing the rate, not waiting for a condition


def main() -> None:
    rate = int(sys.argv[1])
    master, slave = os.openpty()
    tty.setraw(slave)
    print(f"serving {os.ttyname(slave)}", flush=True)
    threading.Thread(target=flood, args=(master, rate), daemon=True).start()
    sys.stdin.read()  # the harness closes our stdin (or exits) to stop us


if __name__ == "__main__":
    main()
