"""Python API of CAN buses: ``dut.can`` is a python-can ``BusABC``.

``send``, ``recv(timeout)``, iteration, ``can.Notifier``, ``set_filters`` and
``send_periodic`` (the task runs on the exporter) work as on any python-can bus, plus
``expect``, and decoding with a DBC file (``load_dbc``, ``decode``, ``expect_signal``; cantools,
the ``can`` extra). Against our exporters frames arrive through the driver's ``follow`` stream,
batched, filtered on the exporter, starting where the bus was when this client was built
(so ``dut.power.on(); dut.can.expect(arbitration_id=0x700)`` sees the boot frames). Against
upstream exporters each frame is one ``_recv_internal`` call, and filters are the bus's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import can
import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.drivers.can import dbc
from jumpstarter_jupyter.drivers.can.common import (
    CanMessage,
    Framer,
    compile_filters,
    filters_message,
    frame,
    message_from_wire,
    unpack,
)
from jumpstarter_jupyter.errors import ConnectionFailed, DriverTimeout, JumpstarterError
from jumpstarter_jupyter.protocol.v1 import can_pb2

log = logging.getLogger("jumpstarter_jupyter.can")
BACKLOG = 1 << 18  # frames held in this process; past that the bus reader waits (the exporter keeps more)
UPSTREAM_POLL = 1.0  # seconds one upstream _recv_internal call may wait, so Ctrl-C is seen


class CanClient(DriverClient, can.BusABC):
    """``dut.can``: a CAN bus on the exporter, as a python-can bus (shown as a ``CanWidget``).

    The virtual board's firmware answers a ``VersionRequest`` (0x600) with the running
    image's version (0x601) while its OS runs:

    >>> import can
    >>> from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
    >>> from jumpstarter_jupyter.drivers.virtual.firmware_can import DBC
    >>> from jumpstarter_jupyter.testing import serve
    >>> with serve(VirtualBoard.create()) as dut:
    ...     dut.power.on()
    ...     dut.serial.expect("login:", timeout=60)
    ...     dut.can.send(can.Message(arbitration_id=0x600, data=b"", is_extended_id=False))
    ...     reply = dut.can.expect(arbitration_id=0x601, timeout=5)
    ...     dut.can.load_dbc(DBC)
    ...     dut.can.decode(reply)["Major"]
    0
    1

    ``for msg in dut.can: ...`` follows the bus frame by frame, forever.
    """

    widget = "jumpstarter_jupyter.drivers.can.widget.CanWidget"

    def __init__(self, connection, path, entry):
        DriverClient.__init__(self, connection, path, entry)
        self.streaming = bool(connection.ours and self.methods and "follow" in self.methods)
        self.missed = 0  # bus frames this client's reader missed (it fell behind the exporter)
        self.on_gap: Callable[[int], None] = self._warn_gap
        self._bus_reader: _BusReader | None = None
        self._lock = threading.Lock()
        self.database = None  # the cantools database of load_dbc()
        self.database_path = ""
        self.database_listeners: list[Callable[[], None]] = []  # called after load_dbc (widgets redraw)
        self._start = int(self.call("position")) if self.streaming else -1
        # what BusABC.__init__ sets, without its set_filters call: upstream, that would clear
        # the bus's filters for every client at each connect
        self._periodic_tasks: list = []
        self._filters = None
        self._is_shutdown = False

    # receiving
    def _reader(self) -> _BusReader:
        with self._lock:
            if self._is_shutdown:
                raise ConnectionFailed(f"{self.display_path}: this bus client was shut down")
            old = self._bus_reader
            if old is None:
                self._bus_reader = _BusReader(self, self._start, self._filters)
            elif old.failed:  # resume where it stopped: what the ring still holds, or a gap notice
                self._bus_reader = _BusReader(self, old.position, self._filters, old._items)
            return self._bus_reader

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if not self.streaming:
            wait = UPSTREAM_POLL if timeout is None else min(timeout, UPSTREAM_POLL)
            msg, filtered = self.call("_recv_internal", wait)
            return (message_from_wire(msg) if msg else None), bool(filtered)
        item = self._reader().take(timeout)
        while isinstance(item, int):  # a gap notice, in order with the frames
            self.missed += item
            self.on_gap(item)
            item = self._reader().take(0)
        return item, False  # python-can checks this client's filters again: set_filters acts at once

    def _warn_gap(self, count: int) -> None:
        log.warning(
            "%s: %d bus frames missed: this reader fell behind the exporter's buffer",
            self.display_path,
            count,
        )

    def subscribe(self, on_frames: Callable[[int, list[can.Message]], None]) -> Subscription:
        """Call ``on_frames(missed, frames)`` with every frame on the bus from now on.

        A reader of its own (what ``recv`` takes is not taken from it), frames this client sent
        included (``is_rx`` False); ``missed`` counts frames it fell too far behind to get. The
        calls come on a thread of the subscription's own and must return quickly. Needs our
        exporter (upstream's has one shared reader). ``close()`` the subscription to end it;
        ``wait()`` returns when it ended (closed, or the stream failed: see ``failed``).
        """
        if not self.streaming:
            raise NotImplementedError(
                f"{self.display_path}: watching the bus needs a jumpstarter-jupyter exporter "
                "(upstream's shares one reader between all its clients)"
            )
        return Subscription(self, on_frames)

    def _open_follow(self) -> Any:
        """The ``follow`` stream, after a unary call: unary calls rebind to a restarted exporter's
        new driver UUIDs (and reopen the channel of one that was down), stream openings do not."""
        self.call("position")
        return self.stream("follow")

    def __iter__(self):
        """Received frames, forever (``for msg in dut.can: ...``)."""
        return can.BusABC.__iter__(self)

    def expect(
        self, arbitration_id: int | None = None, data: bytes | None = None, timeout: float = 10.0
    ) -> can.Message:
        """The next frame with ``arbitration_id`` (and ``data``, if given) within ``timeout`` seconds.

        Frames before it are consumed. Raises :class:`~jumpstarter_jupyter.errors.DriverTimeout`
        naming what was awaited, how many other frames came and how many were missed.
        """
        deadline, seen, missed = time.monotonic() + timeout, 0, self.missed
        while (left := deadline - time.monotonic()) > 0:
            msg = self.recv(left)
            if msg is None:
                break
            if (arbitration_id is None or msg.arbitration_id == arbitration_id) and (
                data is None or bytes(msg.data) == bytes(data)
            ):
                return msg
            seen += 1
        wanted = (
            " ".join(
                f"{k}={v}"
                for k, v in (
                    ("arbitration_id", None if arbitration_id is None else hex(arbitration_id)),
                    ("data", data),
                )
                if v is not None
            )
            or "any frame"
        )
        lost = (
            f"; {self.missed - missed} frames were missed (reader fell behind)"
            if self.missed > missed
            else ""
        )
        raise DriverTimeout(
            self.display_path,
            "expect",
            f"no frame with {wanted} within {timeout} s ({seen} other frames received{lost})",
        )

    # decoding
    def load_dbc(self, path: str | os.PathLike) -> None:
        """Decode frames with the CAN database at ``path`` (DBC; also KCD, SYM, ARXML) from now on.

        The virtual board's is ``jumpstarter_jupyter.drivers.virtual.firmware_can.DBC``.
        """
        self.database = dbc.load(path)
        self.database_path = os.path.abspath(path)
        for listener in list(self.database_listeners):
            listener()

    def decode(self, msg: can.Message) -> dbc.Decoded | None:
        """``msg``'s signals (values, units, value names); None if the database does not describe it.

        Printed, a decoded frame reads
        ``Status: Uptime=3.4 s Temperature=38.2 degC Led=off Button=released State=kernel Counter=12``;
        it is a read-only mapping of signal names to values (see :meth:`expect_signal`).
        """
        return dbc.decode(self._database(), msg)

    def expect_signal(self, message: str, signal: str, value: Any, timeout: float = 10.0) -> dbc.Decoded:
        """The next ``message`` frame whose ``signal`` is ``value``, decoded, within ``timeout`` s.

        ``value`` is a number, the name the database gives a value (``"on"``), or a test of
        the value (``lambda t: t > 40``). Frames before it are consumed. A
        :class:`~jumpstarter_jupyter.errors.DriverTimeout` says what the signal was instead.

        >>> from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
        >>> from jumpstarter_jupyter.drivers.virtual.firmware_can import DBC
        >>> from jumpstarter_jupyter.testing import serve
        >>> with serve(VirtualBoard.create()) as dut:
        ...     dut.can.load_dbc(DBC)
        ...     dut.power.on()
        ...     frame = dut.can.expect_signal("Status", "Temperature", lambda t: t > 0, timeout=30)
        ...     dut.serial.expect("login:", timeout=60)
        ...     dut.serial.sendline("root")
        ...     dut.serial.sendline("led on")
        ...     dut.can.expect_signal("Status", "Led", "on", timeout=10).text("Led")
        0
        'on'
        """
        database = self._database()
        ident, test = dbc.frame_id(database, message), dbc.signal_test(database, message, signal, value)
        deadline, last, seen = time.monotonic() + timeout, None, 0
        while (left := deadline - time.monotonic()) > 0:
            msg = self.recv(left)
            if msg is None:
                break
            decoded = dbc.decode(database, msg) if msg.arbitration_id == ident else None
            if decoded is not None and signal in decoded.signals:
                seen, last = seen + 1, decoded.text(signal)
                if test(decoded):
                    return decoded
        wanted = (
            f"did not pass {getattr(value, '__name__', 'the test')}"
            if callable(value)
            else f"was not {value!r}"
        )
        instead = (
            f"it was {last} in the last of {seen} {message} frames" if seen else f"no {message} frame came"
        )
        raise DriverTimeout(
            self.display_path, "expect_signal", f"{message}.{signal} {wanted} within {timeout} s: {instead}"
        )

    def _database(self) -> Any:
        if self.database is None:
            raise ValueError(f"{self.display_path}: no CAN database: call load_dbc(path) first")
        return self.database

    # sending
    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        """Send one frame (raises the driver's error if the bus refuses it)."""
        if self.streaming:  # our reader must exist first, so our own frame is not echoed to us
            self.call("send", CanMessage.of(msg), timeout, self._reader().id)
        else:
            self.call("send", CanMessage.of(msg), timeout)

    def _send_periodic_internal(
        self,
        msgs: Sequence[can.Message],
        period: float,
        duration: float | None = None,
        autostart: bool = True,
        modifier_callback: Callable | None = None,
    ):
        if modifier_callback is not None:  # a callback cannot travel: this process runs the task
            return super()._send_periodic_internal(msgs, period, duration, autostart, modifier_callback)
        args = [[CanMessage.of(m) for m in msgs], period, duration, autostart]
        if self.streaming:
            args += [None, self._reader().id]
        return RemoteTask(self, self.call("_send_periodic_internal", *args), list(msgs), period)

    # the bus
    def _apply_filters(self, filters: can.typechecking.CanFilters | None) -> None:
        compiled = compile_filters(filters)  # a bad filter fails here, naming its index
        if not self.streaming:
            self.call("_apply_filters", list(filters) if filters else None)  # upstream: the bus's filters
        elif self._bus_reader is not None:
            self._bus_reader.configure(compiled)

    @property
    def state(self) -> can.BusState:
        """The bus state (ACTIVE, PASSIVE or ERROR)."""
        return can.BusState(int(self.call("state")))

    @state.setter
    def state(self, value: can.BusState) -> None:
        self.call("state", value)

    @property
    def protocol(self) -> can.CanProtocol:
        """The CAN protocol of the bus."""
        return can.CanProtocol(int(self.call("protocol")))

    @property
    def channel_info(self) -> str:
        """The exporter interface's description of the channel."""
        return str(self.call("channel_info"))

    def flush_tx_buffer(self) -> None:
        """Discard frames the interface has queued for sending."""
        self.call("flush_tx_buffer")

    def shutdown(self) -> None:
        """End this client's use: its periodic tasks and its reader. The bus stays up for others."""
        if self._is_shutdown:
            return
        try:
            can.BusABC.shutdown(self)  # stops this client's periodic tasks
        finally:
            with self._lock:
                reader, self._bus_reader = self._bus_reader, None
            if reader is not None:
                reader.close()

    def release(self) -> None:
        """``dut.close()`` calls it: shut this client down."""
        try:
            self.shutdown()
        except JumpstarterError as exc:  # the exporter is gone: its tasks are gone with it
            log.debug("%s: shutdown: %s", self.display_path, exc)

    def __del__(self) -> None:
        # python-can warns about a bus collected before shutdown() and shuts it down from the
        # garbage collector. This client's bus is the exporter's and stays up; a client being
        # collected has no reader thread (it would hold a reference), so nothing is left open.
        pass

    def __enter__(self) -> CanClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.can.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group


class RemoteTask(can.broadcastmanager.RestartableCyclicTaskABC):
    """A periodic task running on the exporter; ``stop``/``start`` reach it there."""

    def __init__(self, bus: CanClient, ident: str, msgs: list[can.Message], period: float):
        super().__init__(msgs, period)
        self.bus, self.id = bus, ident

    def start(self) -> None:
        self.bus.call("_start_task", self.id)

    def stop(self) -> None:
        self.bus.call("_stop_task", self.id)


class _BusReader:
    """This client's reader: a thread copying ``follow`` batches into a local queue.

    Items are frames and gap notices (ints: frames missed), in bus order. Frames wait here
    until taken, so a receive that times out or is interrupted loses none.
    """

    def __init__(self, client: CanClient, start: int, filters, carried: deque | None = None):
        self.client = client
        self.position = max(start, 0)
        self.failed: Exception | None = None
        self._items: deque = carried if carried is not None else deque()  # a failed reader's leftovers
        self._framer = Framer()
        self._pending: deque[bytes] = deque()  # message bodies that arrived together with an earlier one
        self._changed = threading.Condition()
        self._closed = False
        self._stream = client._open_follow()
        self.configure(compile_filters(filters), start)
        first = self._next_batch()
        self.id = first.reader if first is not None else 0
        self._thread = threading.Thread(
            target=self._run, args=(first,), name=f"can bus reader {client.display_path}", daemon=True
        )
        self._thread.start()

    def configure(self, filters, start: int = -1) -> None:
        follow = can_pb2.CanFollow(filters=filters_message(filters), start=start)
        self._stream.send(frame(follow))

    def _next_batch(self) -> can_pb2.CanFrames | None:
        while data := self._stream.receive():
            bodies = list(self._framer.feed(data))
            if bodies:
                self._pending.extend(bodies[1:])
                return can_pb2.CanFrames.FromString(bodies[0])
        return None

    def _run(self, batch: can_pb2.CanFrames | None) -> None:
        try:
            while batch is not None:
                self._deliver(batch)
                batch = (
                    can_pb2.CanFrames.FromString(self._pending.popleft())
                    if self._pending
                    else self._next_batch()
                )
        except JumpstarterError as exc:
            if not self._closed:
                self.failed = exc
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _deliver(self, batch: can_pb2.CanFrames) -> None:
        items: list[Any] = [batch.dropped] if batch.dropped else []
        items += unpack(batch)
        with self._changed:
            while len(self._items) >= BACKLOG and not self._closed:
                self._changed.wait()  # the reader is slow: let the exporter's ring hold the rest
            self._items.extend(items)
            self.position = batch.position
            self._changed.notify_all()

    def take(self, timeout: float | None) -> can.Message | int | None:
        """The next frame or gap notice; None after ``timeout`` seconds (or once closed)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if self._items:
                item = self._items.popleft()
                self._changed.notify_all()
                return item
        if self.failed is not None:
            raise ConnectionFailed(f"{self.client.display_path}: frame stream failed: {self.failed}")
        return None

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._stream.close()
        if self._thread is not threading.current_thread():
            self._thread.join(5)


class Subscription(_BusReader):
    """A reader of the bus whose batches go to a callback (``CanClient.subscribe``)."""

    def __init__(self, client: CanClient, on_frames: Callable[[int, list[can.Message]], None]):
        self.on_frames = on_frames
        super().__init__(client, -1, None)

    def _deliver(self, batch: can_pb2.CanFrames) -> None:
        self.position = batch.position
        self.on_frames(batch.dropped, unpack(batch))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the subscription ended (closed, or its stream failed); False after ``timeout`` s."""
        with self._changed:
            return self._changed.wait_for(lambda: self._closed, timeout)
