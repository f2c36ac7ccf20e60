"""Byte streams that ``@exportstream`` methods return.

A :class:`ByteStream` is three coroutines and a close: the exporter feeds client frames into
``send``/``send_eof`` and forwards ``receive`` to the client, both on its event loop, so an
open stream costs no thread. ``close`` may be called from any thread (the exporter calls it
when the client goes away) and ends a pending ``receive``.

A stream object with plain blocking methods instead (``def receive(self) -> bytes``) still
works: the exporter runs those calls on its worker threads (:class:`ThreadedStream`), which
ties up a worker while ``receive`` blocks, so new drivers should write coroutines.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from jumpstarter_jupyter.driver.sync import Pipe


class ByteStream(Protocol):
    async def send(self, data: bytes) -> None:
        """Write bytes towards the device."""

    async def receive(self) -> bytes:
        """Next bytes from the device; ``b""`` at end of stream."""

    async def send_eof(self) -> None:
        """The client has finished writing."""

    def close(self) -> None:
        """Tear down (thread-safe); ends a pending ``receive``."""


class LoopStream:
    """An in-memory echo (what ``loop://`` means): bytes sent come back, EOF ends it."""

    def __init__(self, depth: int = 32):
        self._pipe = Pipe(depth)

    async def send(self, data: bytes) -> None:
        if data:
            await self._pipe.put_async(data)

    async def receive(self) -> bytes:
        return await self._pipe.get_async() or b""

    async def send_eof(self) -> None:
        self._pipe.close()  # what is queued is still echoed, then receive() ends

    def close(self) -> None:
        with self._pipe.changed:
            self._pipe.items.clear()
        self._pipe.close()


class SocketStream:
    """A connected TCP socket on the event loop: EOF from the client half-closes it."""

    CHUNK = 1 << 20

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, host: str, port: int, timeout: float) -> SocketStream:
        """Connect to ``host``:``port`` within ``timeout`` seconds (asyncio sets TCP_NODELAY)."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=cls.CHUNK)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> bytes:
        try:
            return await self.reader.read(self.CHUNK)
        except OSError:
            return b""

    async def send_eof(self) -> None:
        if self.writer.can_write_eof() and not self.writer.is_closing():
            self.writer.write_eof()

    def close(self) -> None:
        def close_on_loop() -> None:
            self.writer.close()
            self.reader.feed_eof()  # a pending receive() returns b"" at once

        try:
            self._loop.call_soon_threadsafe(close_on_loop)
        except RuntimeError:  # the loop is gone, and the transport with it
            pass


class ThreadedStream:
    """Adapts a stream with blocking methods: each call runs on a worker thread."""

    def __init__(self, stream: Any, run: Callable[..., Awaitable[Any]]):
        self.stream, self._run = stream, run

    async def send(self, data: bytes) -> None:
        await self._run(self.stream.send, data)

    async def receive(self) -> bytes:
        return await self._run(self.stream.receive)

    async def send_eof(self) -> None:
        await self._run(self.stream.send_eof)

    def close(self) -> None:
        self.stream.close()


def is_async_stream(stream: Any) -> bool:
    """True for a stream whose ``receive`` is a coroutine function."""
    return inspect.iscoroutinefunction(getattr(stream, "receive", None))
