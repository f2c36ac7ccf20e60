"""GPIO: digital outputs the host drives and digital inputs it senses (upstream gpiod names)."""

from __future__ import annotations

import collections
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from jumpstarter_jupyter.driver import Driver, Signal, export
from jumpstarter_jupyter.drivers.gpio.common import (
    ACTIVE,
    EDGES,
    INACTIVE,
    INPUT_CLIENT,
    OUTPUT_CLIENT,
    UPSTREAM_INPUT_CLIENT,
    UPSTREAM_OUTPUT_CLIENT,
)

# watch() re-sends the value this often when nothing changes, so a viewer can tell a quiet
# line from a dead stream
WATCH_HEARTBEAT = 1.0
HISTORY = 256  # changes a line remembers for waiters that wake late


class DigitalOutputInterface(Driver):
    """What every digital output exports (upstream's ``DigitalOutput`` wire names)."""

    client = OUTPUT_CLIENT
    upstream_client = UPSTREAM_OUTPUT_CLIENT

    @export
    @abstractmethod
    def on(self) -> None:
        """Drive the pin active."""
        raise NotImplementedError

    @export
    @abstractmethod
    def off(self) -> None:
        """Drive the pin inactive."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def read_pin(self) -> int:
        """The pin's present value: 1 (active) or 0."""
        raise NotImplementedError


class DigitalInputInterface(Driver):
    """What every digital input exports (upstream's ``DigitalInput`` wire names, plus ``watch``)."""

    client = INPUT_CLIENT
    upstream_client = UPSTREAM_INPUT_CLIENT

    @export(readonly=True)
    @abstractmethod
    def read_pin(self) -> int:
        """The pin's present value: 1 (active) or 0."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def wait_for_active(self, timeout: float | None = None) -> None:
        """Return once the pin is active; ``TimeoutError`` after ``timeout`` seconds (None: never)."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def wait_for_inactive(self, timeout: float | None = None) -> None:
        """Return once the pin is inactive; ``TimeoutError`` after ``timeout`` seconds (None: never)."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def wait_for_edge(self, edge_type: str, timeout: float | None = None) -> None:
        """Return at the next ``"rising"`` or ``"falling"`` edge; ``TimeoutError`` after ``timeout`` seconds."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def watch(self) -> Iterator[int]:
        """The pin's value now, then on every change, until the caller stops listening."""
        raise NotImplementedError
        yield


class VirtualLine:
    """One simulated GPIO line shared by a board and a driver: a thread-safe 0/1 value.

    Threads and the exporter's event loop can both wait on it; it remembers its last
    changes, so a waiter that wakes late still sees a short pulse as two edges.

    >>> line = VirtualLine()
    >>> line.set(1); line.value
    1
    >>> line.wait_for(1, timeout=0)
    True
    """

    def __init__(self, value: int = INACTIVE):
        self._value = _level(value)
        self._changed = Signal()
        self._seq = 0  # number of changes so far
        self._history: collections.deque[tuple[int, int]] = collections.deque(maxlen=HISTORY)  # (seq, level)
        self._subscribers: list[Callable[[int], None]] = []

    @property
    def value(self) -> int:
        """The present level, 0 or 1."""
        return self._value

    @property
    def seq(self) -> int:
        """How many times the level has changed: a position for :meth:`changes_since`."""
        return self._seq

    def set(self, value: int) -> None:
        """Set the level; waiters wake and subscribers are called (on this thread) if it changed."""
        value = _level(value)
        with self._changed:
            if value == self._value:
                return
            self._value = value
            self._seq += 1
            self._history.append((self._seq, value))
            self._changed.notify()
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(value)

    def wait_for(self, value: int, timeout: float | None = None) -> bool:
        """Block until the level is ``value``; False if ``timeout`` seconds passed first."""
        value = _level(value)
        return self._changed.wait(lambda: self._value == value, timeout)

    async def wait_for_async(self, value: int, timeout: float | None = None) -> bool:
        """:meth:`wait_for` on the event loop."""
        value = _level(value)
        return await self._changed.wait_async(lambda: self._value == value, timeout)

    async def wait_for_change_to(self, value: int, after: int, timeout: float | None = None) -> bool:
        """Wait for a change to ``value`` later than change number ``after`` (an edge)."""
        return await self._changed.wait_async(
            lambda: any(seq > after and level == value for seq, level in self._history), timeout
        )

    async def changes_since(self, after: int, timeout: float | None = None) -> tuple[list[int], int]:
        """The levels the line took after change number ``after`` (waiting up to ``timeout`` for
        one), and the new position."""
        await self._changed.wait_async(lambda: self._seq > after, timeout)
        with self._changed:
            return [level for seq, level in self._history if seq > after], self._seq

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(level)`` on every change; returns the function that unsubscribes.

        Callbacks run on the thread that called :meth:`set`, so they must be quick.
        """
        with self._changed:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._changed:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe


def _level(value: int) -> int:
    if value not in (0, 1):  # True/False and 1.0/0.0 compare equal and are accepted
        raise ValueError(f"a GPIO level is 0 or 1, got {value!r}")
    return int(value)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None (wait forever), got {timeout}")


def _check_line(owner: object, line: object) -> None:
    if not isinstance(line, VirtualLine):
        name = type(owner).__name__
        raise TypeError(
            f"{name}.line must be a VirtualLine shared with a simulated board (set in code), "
            f"got {line!r}; in YAML use Mock{name.removeprefix('Virtual')}"
        )


@dataclass
class _OnVirtualLine:
    """What the virtual GPIO drivers share: a :class:`VirtualLine` given in code, read as the pin."""

    line: VirtualLine  # given in code; a config naming this driver is told to use the Mock one
    pin: VirtualLine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_line(self, self.line)
        self.pin = self.line

    @export(readonly=True)
    def read_pin(self) -> int:
        """The pin's present value: 1 (active) or 0."""
        return self.pin.value


@dataclass
class VirtualDigitalOutput(_OnVirtualLine, DigitalOutputInterface):
    """A digital output driving a :class:`VirtualLine` (a simulated board's input pin)."""

    @export
    def on(self) -> None:
        """Drive the pin active."""
        self.pin.set(ACTIVE)
        self.logger.info("%s on", self.description or "output")

    @export
    def off(self) -> None:
        """Drive the pin inactive."""
        self.pin.set(INACTIVE)
        self.logger.info("%s off", self.description or "output")


@dataclass
class VirtualDigitalInput(_OnVirtualLine, DigitalInputInterface):
    """A digital input sensing a :class:`VirtualLine` (a simulated board's output pin).

    Its waits are coroutines on the exporter's loop: a waiting caller costs no thread and
    a caller that goes away ends its wait.
    """

    @export(readonly=True)
    async def wait_for_active(self, timeout: float | None = None) -> None:
        """Return once the pin is active; ``TimeoutError`` after ``timeout`` seconds (None: never)."""
        await self._wait_for_level(ACTIVE, timeout)

    @export(readonly=True)
    async def wait_for_inactive(self, timeout: float | None = None) -> None:
        """Return once the pin is inactive; ``TimeoutError`` after ``timeout`` seconds (None: never)."""
        await self._wait_for_level(INACTIVE, timeout)

    @export(readonly=True)
    async def wait_for_edge(self, edge_type: str, timeout: float | None = None) -> None:
        """Return at the next ``"rising"`` or ``"falling"`` edge; ``TimeoutError`` after ``timeout`` seconds."""
        if edge_type not in EDGES:
            raise ValueError(f"edge_type must be one of {', '.join(map(repr, EDGES))}, got {edge_type!r}")
        _check_timeout(timeout)
        level = ACTIVE if edge_type == "rising" else INACTIVE
        # the line records changes only, so a change to `level` is exactly that edge
        if not await self.pin.wait_for_change_to(level, self.pin.seq, timeout):
            raise TimeoutError(f"no {edge_type} edge within {timeout} s")

    @export(readonly=True)
    async def watch(self) -> AsyncIterator[int]:
        """The pin's value now, then on every change (repeated every second while unchanged)."""
        seen = self.pin.seq
        yield self.pin.value
        while True:
            levels, seen = await self.pin.changes_since(seen, WATCH_HEARTBEAT)
            for level in levels or [self.pin.value]:
                yield level

    async def _wait_for_level(self, level: int, timeout: float | None) -> None:
        _check_timeout(timeout)
        if not await self.pin.wait_for_async(level, timeout):
            state = "active" if level == ACTIVE else "inactive"
            raise TimeoutError(f"pin did not become {state} within {timeout} s")


@dataclass
class MockDigitalOutput(VirtualDigitalOutput):
    """A digital output with a line of its own, for configs without hardware.

    ``line`` is upstream's line offset: accepted so upstream configs load, otherwise unused.
    """

    line: int | None = None

    def __post_init__(self) -> None:
        self.pin = VirtualLine()


@dataclass
class MockDigitalInput(VirtualDigitalInput):
    """A digital input with a line of its own that stays at ``initial_value``.

    ``line`` is upstream's line offset: accepted so upstream configs load, otherwise unused.
    """

    line: int | None = None
    initial_value: int = INACTIVE

    def __post_init__(self) -> None:
        self.pin = VirtualLine(self.initial_value)
