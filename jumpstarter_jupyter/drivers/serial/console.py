"""The exporter-side console: a scrollback ring with absolute offsets, and its readers.

Every byte the port produces gets an absolute offset (0 = the first byte since the exporter
started). The ring keeps at least ``capacity`` recent bytes. Any number of readers follow it
independently, each from its own offset; a reader that falls behind the ring is told how many
bytes it missed (``Chunk.dropped``) and continues at the oldest byte still held. Port events
("port gone, reattaching") are stored at the offset where they happened, so a reader sees them
in order with the bytes::

    >>> console = Console(capacity=16)
    >>> console.append(b"U-Boot\\r\\n")
    >>> console.event("port gone, reattaching")
    >>> [(c.offset, c.data, c.event) for c in console.follow(snapshot=True)]
    [(0, b'U-Boot\\r\\n', ''), (8, b'', 'port gone, reattaching')]
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from jumpstarter_jupyter.driver.sync import Signal
from jumpstarter_jupyter.drivers.serial.common import Chunk

DEFAULT_CAPACITY = 1 << 20
MAX_CHUNK = 1 << 20  # bytes per chunk handed to a reader (well below gRPC's 4 MiB message limit)
MAX_EVENTS = 256


@dataclass(frozen=True)
class _Event:
    seq: int
    offset: int
    text: str


class Console:
    """Scrollback ring plus fan-out. Thread-safe: one writer, any number of readers."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity <= 0:
            raise ValueError(f"console capacity must be > 0 bytes, got {capacity}")
        self.capacity = capacity
        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]
        self._events: deque[_Event] = deque(maxlen=MAX_EVENTS)
        self._event_seq = 0
        self._closed = False
        self._changed = Signal()

    @property
    def end(self) -> int:
        """Absolute offset one past the newest byte."""
        with self._changed:
            return self._base + len(self._buf)

    def append(self, data: bytes) -> None:
        """Add bytes from the port and wake the readers."""
        if not data:
            return
        with self._changed:
            self._buf += data
            # trim only once twice the capacity is held: the ring stays >= capacity and the
            # memmove is paid once per `capacity` bytes, not on every append
            if len(self._buf) > 2 * self.capacity:
                excess = len(self._buf) - self.capacity
                del self._buf[:excess]
                self._base += excess
            self._changed.notify()

    def event(self, text: str) -> None:
        """Record a port event at the current end offset."""
        with self._changed:
            self._events.append(_Event(self._event_seq, self._base + len(self._buf), text))
            self._event_seq += 1
            self._changed.notify()

    def close(self) -> None:
        """End every reader (the exporter is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify()

    def wake(self) -> None:
        """Wake blocked readers so they notice that they were closed."""
        self._changed.wake()

    def tail(self, size: int) -> bytes:
        """The newest ``size`` bytes held (for error messages)."""
        with self._changed:
            return bytes(self._buf[-size:]) if size > 0 else b""

    def reader(
        self, start: int | None = None, from_end: bool = False, snapshot: bool = False
    ) -> ConsoleReader:
        """A reader positioned now: at ``start`` (None: the oldest byte held) or at the live end."""
        return ConsoleReader(self, start, from_end, snapshot)

    def follow(
        self, start: int | None = None, *, from_end: bool = False, snapshot: bool = False
    ) -> Iterator[Chunk]:
        """Chunks from ``start`` on (a thread's view); ends at close or at the snapshot end."""
        reader = self.reader(start, from_end, snapshot)
        try:
            while (chunk := reader.read()) is not None:
                yield chunk
        finally:
            reader.close()

    async def follow_async(
        self, start: int | None = None, *, from_end: bool = False, snapshot: bool = False
    ) -> AsyncIterator[Chunk]:
        """:meth:`follow` on the event loop: a follower costs no thread."""
        reader = self.reader(start, from_end, snapshot)
        try:
            while (chunk := await reader.read_async()) is not None:
                yield chunk
        finally:
            reader.close()


class ConsoleReader:
    """One reader's position in a :class:`Console`: every byte once, in order, or a dropped count."""

    def __init__(self, console: Console, start: int | None, from_end: bool, snapshot: bool):
        self.console = console
        self.done = False
        with console._changed:
            end = console._base + len(console._buf)
            if from_end:
                self.pos = end
            else:
                self.pos = console._base if start is None or start < 0 else min(start, end)
            # events recorded at or after the start position are part of what this reader sees
            later = [e.seq for e in console._events if e.offset >= self.pos and not from_end]
            self.event_seq = later[0] if later else console._event_seq
            self.stop_at = end if snapshot else None
            self.stop_seq = console._event_seq if snapshot else None

    def close(self) -> None:
        """Stop reading; a blocked ``read`` returns None."""
        self.done = True
        self.console.wake()

    def read(self, timeout: float | None = None) -> Chunk | None:
        """The next chunk, or None after ``timeout`` seconds without one (or once done)."""
        found = _NextChunk(self)
        self.console._changed.wait(found, timeout)
        return found.chunk

    async def read_async(self, timeout: float | None = None) -> Chunk | None:
        """:meth:`read` for a coroutine."""
        found = _NextChunk(self)
        await self.console._changed.wait_async(found, timeout)
        return found.chunk

    def _next_locked(self) -> Chunk | None:
        console = self.console
        dropped = 0
        if self.pos < console._base:
            dropped, self.pos = console._base - self.pos, console._base
        event = next((e for e in console._events if e.seq >= self.event_seq), None)
        if event is not None and self.stop_seq is not None and event.seq >= self.stop_seq:
            event = None
        if event is not None and event.offset <= self.pos:
            self.event_seq = event.seq + 1
            return Chunk(self.pos, b"", dropped, event.text)
        limit = console._base + len(console._buf)
        if event is not None:
            limit = min(limit, event.offset)
        if self.stop_at is not None:
            limit = min(limit, self.stop_at)
        limit = min(limit, self.pos + MAX_CHUNK)
        if limit > self.pos:
            with (
                memoryview(console._buf) as view,
                view[self.pos - console._base : limit - console._base] as part,
            ):
                data = bytes(part)
            chunk = Chunk(self.pos, data, dropped)
            self.pos = limit
            return chunk
        if dropped:
            return Chunk(self.pos, b"", dropped)
        if console._closed or (self.stop_at is not None and self.pos >= self.stop_at and event is None):
            self.done = True
        return None


class _NextChunk:
    """A wait predicate that takes the reader's next chunk (under the console's lock)."""

    def __init__(self, reader: ConsoleReader):
        self.reader, self.chunk = reader, None

    def __call__(self) -> bool:
        if self.chunk is None and not self.reader.done:
            self.chunk = self.reader._next_locked()
        return self.chunk is not None or self.reader.done
