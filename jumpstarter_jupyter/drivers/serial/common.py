"""Pieces shared by the serial driver, its client and the virtual board's orchestration.

:class:`ConsoleSpawn` is a pexpect spawn fed by a console follower instead of a child
process, so ``expect()`` has pexpect's exact semantics (patterns, ``before``/``after``,
``TIMEOUT``/``EOF`` in the pattern list) on both sides of the wire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pexpect
from pexpect.spawnbase import SpawnBase

WAIT_SLICE = 0.1  # seconds: a kernel interrupt is noticed between slices even without EINTR
MAX_PENDING = 8 << 20  # bytes held for expect() while nobody reads; older ones are dropped

CLIENT = "jumpstarter_jupyter.drivers.serial.client.SerialClient"
UPSTREAM_CLIENT = "jumpstarter_driver_pyserial.client.PySerialClient"  # what our serial drivers report
UPSTREAM_CLIENTS = {UPSTREAM_CLIENT: CLIENT}  # upstream client classes -> ours (client.tree reads it)


@dataclass(frozen=True)
class Chunk:
    """What a console reader gets: ``data`` starting at absolute ``offset``, or an ``event``.

    ``dropped`` counts the bytes this reader missed just before ``offset`` (it fell behind).
    """

    offset: int
    data: bytes = b""
    dropped: int = 0
    event: str = ""


def marker(text: str) -> bytes:
    """How a console event or gap appears in-band for humans and ``expect()``."""
    return f"\r\n[jumpstarter] {text}\r\n".encode()


def dropped_text(count: int) -> str:
    return f"{count} bytes dropped (this reader fell behind the console)"


class ExpectTimeout(pexpect.TIMEOUT, TimeoutError):
    """``expect()`` gave up; the message says what was awaited and what the console showed last."""


class ConsoleSpawn(SpawnBase):
    """A pexpect spawn reading bytes handed to :meth:`feed` (by a console follower thread).

    ``write`` sends bytes to the port. Thread-safe between one feeding thread and one
    thread calling ``expect``.
    """

    def __init__(self, write: Callable[[bytes], None], timeout: float = 30, encoding: str | None = "utf-8"):
        super().__init__(timeout=timeout, maxread=1 << 16, encoding=encoding, codec_errors="replace")
        self._write = write
        self._pending = bytearray()
        self._eof = False
        self._cond = threading.Condition()
        self.crlf = self.string_type("\r\n")

    def feed(self, data: bytes) -> None:
        """Queue console bytes for ``expect``/``read``."""
        with self._cond:
            self._pending += data
            if len(self._pending) > MAX_PENDING:
                excess = len(self._pending) - MAX_PENDING // 2
                del self._pending[:excess]
                self._pending[:0] = marker(f"{excess} bytes dropped (nobody called expect/read)")
            self._cond.notify_all()

    def feed_eof(self) -> None:
        """The console ended: ``expect`` raises EOF once the queued bytes are consumed."""
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1):
        """Up to ``size`` bytes (decoded), waiting up to ``timeout`` seconds for the first one."""
        if timeout == -1:
            timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._pending:
                if self._eof:
                    self.flag_eof = True
                    raise pexpect.EOF("the console ended")
                left = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
                if left <= 0:
                    raise pexpect.TIMEOUT("timeout waiting for console output")
                self._cond.wait(left)
            data = bytes(self._pending[:size])
            del self._pending[:size]
        text = self._decoder.decode(data, final=False)
        self._log(text, "read")
        return text

    def send(self, s) -> int:
        """Write ``s`` (text is UTF-8 encoded) to the port."""
        data = self._coerce_send_string(s)
        self._log(data, "send")
        data = data.encode("utf-8") if isinstance(data, str) else data
        self._write(data)
        return len(data)

    def take(self) -> str:
        """Everything received but not yet consumed by ``expect`` (empties the buffer)."""
        with self._cond:
            data = bytes(self._pending)
            self._pending.clear()
        text = self.buffer + self._decoder.decode(data, final=False)
        self.buffer = self.string_type()
        return text
