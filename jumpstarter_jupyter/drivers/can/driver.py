"""CAN buses: a python-can ``Bus`` kept open by the exporter, shared by every client.

``Can(channel, interface)`` opens any python-can interface (``socketcan`` on ``can0``,
``virtual`` for simulation, vendor adapters); ``bitrate`` and ``options`` are passed to
``can.Bus``. A reader thread copies every received frame into :attr:`Can.ring`, which any
number of readers follow, each with its own filters and position.

Wire methods are upstream's (``send``, ``_recv_internal``, ``_send_periodic_internal``,
``_start_task``, ``_stop_task``, ``state``, ``protocol``, ``channel_info``,
``_apply_filters``, ``flush_tx_buffer``, ``shutdown``) with upstream's encodings, plus ours:
``follow`` (the batched frame stream of ``can.proto``) and ``position``. Upstream clients
share one reader, as they share upstream's bus; ``shutdown`` ends that reader's use, never
the bus.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import can
from can.typechecking import CanFilter

from jumpstarter_jupyter.driver import Driver, export, exportstream
from jumpstarter_jupyter.drivers.can.common import CLIENT, UPSTREAM_CLIENT, CanMessage, compile_filters
from jumpstarter_jupyter.drivers.can.follow import FollowStream
from jumpstarter_jupyter.drivers.can.periodic import PeriodicSend
from jumpstarter_jupyter.drivers.can.ring import DEFAULT_CAPACITY, NOBODY, FrameRing

READ_TIMEOUT = 0.2  # seconds a bus read blocks, so the reader thread notices teardown
READ_BATCH = 256  # frames moved into the ring per wake-up of its readers


@dataclass
class Can(Driver):
    """A CAN bus through python-can.

    Config: ``channel`` and ``interface`` (as upstream's ``Can``), ``bitrate``, ``options``
    (more ``can.Bus`` keyword arguments, e.g. ``fd: true``), ``buffer`` (frames kept for
    readers that fall behind, default 65 536).
    """

    client = CLIENT
    upstream_client = UPSTREAM_CLIENT

    channel: str | int | None
    interface: str | None
    bitrate: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    buffer: int = DEFAULT_CAPACITY
    ring: FrameRing = field(init=False, repr=False)

    def __post_init__(self):
        self.ring = FrameRing(self.buffer)
        extra = {**({"bitrate": self.bitrate} if self.bitrate is not None else {}), **self.options}
        try:
            self.bus = can.Bus(channel=self.channel, interface=self.interface, **extra)
        except (can.CanError, ImportError) as exc:
            raise ValueError(f"cannot open CAN bus {self.interface}:{self.channel}: {exc}") from None
        self._send_lock = threading.Lock()  # python-can buses are not safe for concurrent sends
        self._tasks: dict[str, PeriodicSend] = {}
        # upstream clients share one reader, as they share upstream's one bus: from the start, no echo
        self._shared = self.ring.reader(0, transmitted=False)
        self._shared.configure(())
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"can {self.channel}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Reader thread: bus frames into the ring, in batches of what has arrived."""
        while not self._stopped.is_set():
            try:
                msg = self.bus.recv(READ_TIMEOUT)
                batch = []
                while msg is not None and len(batch) < READ_BATCH:
                    batch.append(msg)
                    msg = self.bus.recv(0) if len(batch) < READ_BATCH else None
            except can.CanError as exc:
                if self._stopped.is_set():
                    return
                self.logger.warning("%s: receive failed (%s)", self.channel, exc)
                self._stopped.wait(READ_TIMEOUT)  # the bus is failing: retry at the read period
                continue
            if batch:
                self.ring.extend(batch)

    def transmit(self, msg: can.Message, timeout: float | None = None, origin: int = NOBODY) -> None:
        """Send ``msg`` on the bus and record it in the ring as transmitted by reader ``origin``."""
        with self._send_lock:
            self.bus.send(msg, timeout)
        sent = can.Message(
            timestamp=msg.timestamp or time.time(),
            arbitration_id=msg.arbitration_id,
            is_extended_id=msg.is_extended_id,
            is_remote_frame=msg.is_remote_frame,
            is_error_frame=msg.is_error_frame,
            channel=self.channel,
            dlc=msg.dlc,
            data=msg.data,
            is_fd=msg.is_fd,
            is_rx=False,
            bitrate_switch=msg.bitrate_switch,
            error_state_indicator=msg.error_state_indicator,
        )
        self.ring.extend((sent,), origin)

    # upstream's wire methods
    @export
    def send(self, msg: CanMessage, timeout: float | None = None, origin: int = NOBODY) -> None:
        """Send one frame; ``timeout`` in seconds (None: as long as the interface takes)."""
        self.transmit(_frame(msg), timeout, origin)

    @export(private=True, readonly=True)
    async def _recv_internal(self, timeout: float | None) -> tuple[CanMessage | None, bool]:
        """The next frame for upstream clients (shared between them), or None after ``timeout`` s."""
        got = await self._shared.read_async(1, timeout)
        if got is None:
            return None, True
        dropped, frames = got
        if dropped:
            self.logger.warning(
                "%s: upstream clients' reader fell behind: %d frames missed", self.channel, dropped
            )
        return (CanMessage.of(frames[0]) if frames else None), True

    @export(private=True)
    def _send_periodic_internal(
        self,
        msgs: list[CanMessage] | CanMessage,
        period: float,
        duration: float | None = None,
        autostart: bool = True,
        modifier_callback: Callable | None = None,
        origin: int = NOBODY,
    ) -> str:
        """Start sending ``msgs`` every ``period`` s (0: back to back) on the exporter; returns the task id."""
        if modifier_callback is not None:
            raise ValueError("modifier_callback cannot travel: the client runs such a task itself")
        frames = [_frame(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        task = PeriodicSend(lambda msg: self.transmit(msg, None, origin), frames, period, duration)
        ident = str(uuid.uuid4())
        self._tasks[ident] = task
        if autostart:
            task.start()
        return ident

    @export(private=True)
    def _start_task(self, uuid: str) -> None:
        """(Re)start a periodic task."""
        self._task(uuid).start()

    @export(private=True)
    def _stop_task(self, uuid: str) -> None:
        """Stop a periodic task and forget it (nothing it sends follows this return)."""
        self._task(uuid).stop()
        del self._tasks[uuid]

    def _task(self, ident: str) -> PeriodicSend:
        task = self._tasks.get(ident)
        if task is None:
            raise ValueError(
                f"no periodic task {ident} (stopped already, or started before the exporter restarted)"
            )
        return task

    @export  # not read-only: with a value it changes the bus for everyone (the wire has one method)
    def state(self, value: can.BusState | None = None) -> can.BusState | None:
        """The bus state (ACTIVE, PASSIVE, ERROR); with ``value``, set it."""
        if value is not None:
            self.bus.state = value
            return None
        return self.bus.state

    @export(readonly=True)
    def protocol(self) -> can.CanProtocol:
        """The CAN protocol of the bus (CAN_20, CAN_FD, ...)."""
        return self.bus.protocol

    @export(readonly=True)
    def channel_info(self) -> str:
        """The interface's description of the channel."""
        return self.bus.channel_info

    @export(private=True, readonly=True)
    def _apply_filters(self, filters: list[CanFilter] | None) -> None:
        """Filter what upstream clients receive (they share one reader, as upstream's bus)."""
        self._shared.configure(compile_filters(filters))

    @export
    def flush_tx_buffer(self) -> None:
        """Discard frames queued for sending (where the interface supports it)."""
        self.bus.flush_tx_buffer()

    @export
    def shutdown(self) -> None:
        """End the calling upstream client's use: its reader starts over. The bus stays up."""
        with self.ring.changed:
            self._shared.close()
            self._shared = self.ring.reader(transmitted=False)
            self._shared.configure(())
        self.logger.info("%s: a client ended its use; the bus stays up for the others", self.channel)

    # ours
    @exportstream(readonly=True)
    def follow(self) -> FollowStream:
        """Frames as batches (``can.proto``): the reader's filters and start come in its first message."""
        return FollowStream(self.ring.reader(), str(self.channel))

    @export(readonly=True)
    def position(self) -> int:
        """The ring's end: where a reader starting now begins."""
        return self.ring.end

    def teardown(self) -> None:
        """Stop the periodic tasks and the reader thread, then release the bus."""
        for task in self._tasks.values():
            task.stop()
        self._tasks.clear()
        self._stopped.set()
        self._thread.join(5)
        self.ring.close()
        self.bus.shutdown()


def _frame(msg: CanMessage) -> can.Message:
    try:
        return msg.message()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a valid CAN frame ({exc}): {msg}") from None
