"""The exporter-side frame ring: every frame on the bus once, and any number of readers.

Each frame the bus received (or the exporter transmitted) gets an absolute position (0 = the
first since the exporter started). The ring keeps at least ``capacity`` recent frames. Each
reader follows it from its own position with its own filters, in order, costing no thread;
a reader that falls behind the ring is told how many bus frames it missed and continues at
the oldest frame still held::

    >>> ring = FrameRing(capacity=2)
    >>> reader = ring.reader(start=0)
    >>> reader.configure(compile_filters([{"can_id": 0x100, "can_mask": 0x700}]))
    >>> ring.extend([can.Message(arbitration_id=i) for i in (0x100, 0x200, 0x101, 0x102, 0x103, 0x104)])
    >>> dropped, frames = reader.take(limit=10)
    >>> dropped, [hex(m.arbitration_id) for m in frames]
    (4, ['0x103', '0x104'])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import can

from jumpstarter_jupyter.driver.sync import Signal
from jumpstarter_jupyter.drivers.can.common import Compiled, compile_filters, passes  # noqa: F401 (doctest)

DEFAULT_CAPACITY = 65536  # frames
NOBODY = 0  # the origin of frames no reader of ours sent (the bus, or an upstream client)


class FrameRing:
    """Frames with absolute positions plus fan-out. Thread-safe: writers and readers anywhere."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity <= 0:
            raise ValueError(f"buffer must be > 0 frames, got {capacity}")
        self.capacity = capacity
        self._frames: list[tuple[can.Message, int]] = []  # (frame, origin reader id)
        self._base = 0  # absolute position of _frames[0]
        self._closed = False
        self._ids = itertools.count(1)
        self.changed = Signal()

    @property
    def end(self) -> int:
        """Position one past the newest frame: where a reader starting now begins."""
        with self.changed:
            return self._base + len(self._frames)

    def extend(self, frames: Iterable[can.Message], origin: int = NOBODY) -> None:
        """Add frames (from the bus, or transmitted by reader ``origin``) and wake the readers."""
        with self.changed:
            self._frames.extend((msg, origin) for msg in frames)
            # trim once twice the capacity is held: the move is paid once per `capacity` frames
            if len(self._frames) > 2 * self.capacity:
                excess = len(self._frames) - self.capacity
                del self._frames[:excess]
                self._base += excess
            self.changed.notify()

    def reader(self, start: int | None = None, *, transmitted: bool = True) -> FrameReader:
        """A reader at ``start`` (None: the live end); ``transmitted=False`` skips frames we sent."""
        return FrameReader(self, next(self._ids), start, transmitted)

    def close(self) -> None:
        """End every reader (the exporter is stopping)."""
        with self.changed:
            self._closed = True
            self.changed.notify()


class FrameReader:
    """One reader's position, filters and options in a :class:`FrameRing`.

    A reader delivers nothing until :meth:`configure` was called (the follow stream's first
    message): frames from its start position on then pass through the filters it gave.
    """

    def __init__(self, ring: FrameRing, ident: int, start: int | None, transmitted: bool):
        self.ring, self.id, self.transmitted = ring, ident, transmitted
        self.filters: Compiled = ()
        self.receive_own = False
        self.configured = self.done = False
        with ring.changed:
            end = ring._base + len(ring._frames)
            self.pos = end if start is None or start < 0 else min(start, end)

    def configure(self, filters: Compiled, receive_own: bool = False, start: int | None = None) -> None:
        """Set the filters (and, before the first read, the start position); wake the reader."""
        with self.ring.changed:
            if not self.configured and start is not None:
                end = self.ring._base + len(self.ring._frames)
                self.pos = end if start < 0 else min(start, end)
            self.filters, self.receive_own, self.configured = filters, receive_own, True
            self.ring.changed.notify()

    def close(self) -> None:
        """Stop reading: a waiting read returns None."""
        with self.ring.changed:
            self.done = True
            self.ring.changed.notify()

    async def ready_async(self) -> bool:
        """Wait until configured; False if the reader ended first."""
        await self.ring.changed.wait_async(lambda: self._ended_locked() or self.configured)
        return not self.done

    def take(self, limit: int) -> tuple[int, list[can.Message]]:
        """What is there now: (bus frames missed, up to ``limit`` frames that pass)."""
        with self.ring.changed:
            return self._take_locked(limit)

    async def read_async(
        self, limit: int, timeout: float | None = None
    ) -> tuple[int, list[can.Message]] | None:
        """Wait for frames (or a gap); None at the end, ``(0, [])`` after ``timeout`` seconds."""
        found = _Next(self, limit)
        await self.ring.changed.wait_async(found, timeout)
        if found.result is None and self.done:
            return None
        return found.result or (0, [])

    def _take_locked(self, limit: int) -> tuple[int, list[can.Message]]:
        ring = self.ring
        dropped = 0
        if self.pos < ring._base:
            dropped, self.pos = ring._base - self.pos, ring._base
        out = []
        index, stop = self.pos - ring._base, len(ring._frames)
        while index < stop and len(out) < limit:
            msg, origin = ring._frames[index]
            index += 1
            if msg.is_rx or (self.transmitted and (origin != self.id or self.receive_own)):
                if passes(self.filters, msg):
                    out.append(msg)
        self.pos = ring._base + index
        return dropped, out

    def _ended_locked(self) -> bool:
        if self.ring._closed and not self.done:
            self.done = True
        return self.done


class _Next:
    """A wait predicate that takes the reader's next frames (under the ring's lock)."""

    def __init__(self, reader: FrameReader, limit: int):
        self.reader, self.limit, self.result = reader, limit, None

    def __call__(self) -> bool:
        reader = self.reader
        if reader._ended_locked():
            return True
        if not reader.configured:
            return False
        dropped, frames = reader._take_locked(self.limit)
        if dropped or frames:
            self.result = (dropped, frames)
        return self.result is not None
