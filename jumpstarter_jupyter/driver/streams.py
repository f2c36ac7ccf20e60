"""Byte streams that ``@exportstream`` methods return.

A :class:`ByteStream` is four blocking calls; the exporter pumps client frames into
``send``/``send_eof`` on one thread and forwards ``receive`` to the client on another.
"""

from __future__ import annotations

import queue
import socket
from typing import Protocol


class ByteStream(Protocol):
    def send(self, data: bytes) -> None:
        """Write bytes towards the device."""

    def receive(self) -> bytes:
        """Next bytes from the device; ``b""`` at end of stream."""

    def send_eof(self) -> None:
        """The client has finished writing."""

    def close(self) -> None:
        """Tear down; unblocks a pending ``receive``."""


class LoopStream:
    """An in-memory echo (what ``loop://`` means): bytes sent come back, EOF ends it."""

    def __init__(self, depth: int = 32):
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._closed = False

    def send(self, data: bytes) -> None:
        if data and not self._closed:
            self._queue.put(data)

    def receive(self) -> bytes:
        data = self._queue.get()
        if data is None:
            self._queue.put(None)  # stay at EOF for every later receive
            return b""
        return data

    def send_eof(self) -> None:
        self._closed = True
        self._queue.put(None)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                self._queue.get_nowait()
                self._queue.put_nowait(None)


class SocketStream:
    """A connected socket: EOF from the client half-closes it."""

    CHUNK = 1 << 20

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> bytes:
        try:
            return self.sock.recv(self.CHUNK)
        except OSError:
            return b""

    def send_eof(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
