"""Serial consoles: a pyserial port kept open by the exporter, with scrollback and fan-out.

``PySerial(url, baudrate)`` opens any pyserial URL (``/dev/ttyUSB0``, ``rfc2217://``,
``socket://``); ``loop://`` is an in-memory echo. A reader thread copies everything the port
produces into :attr:`PySerial.console`, which our ``ConsoleService.Follow`` serves with replay
and dropped-byte counts. When the port vanishes (USB re-enumeration), the console records
"port gone, reattaching" and the driver reopens the same URL as soon as it is back.

Wire methods are upstream's: ``connect`` (live bytes both ways, no replay, no markers),
``close``, ``set_dtr``, ``set_rts``; plus ours: ``send_break``, ``offset`` and ``transmit``
(a write-only byte stream, so our clients send keys without a second copy of the output).
"""

from __future__ import annotations

import asyncio
import errno
import threading
from dataclasses import dataclass, field
from typing import Any

import serial

from jumpstarter_jupyter.driver import Driver, LoopStream, Pipe, export, exportstream
from jumpstarter_jupyter.driver.console import ConsoleDriver
from jumpstarter_jupyter.drivers.serial.common import CLIENT, UPSTREAM_CLIENT
from jumpstarter_jupyter.drivers.serial.console import DEFAULT_CAPACITY, Console

LOOP_URL = "loop://"
READ_TIMEOUT = 0.2  # seconds, only for pyserial handlers that cannot cancel a blocking read


@dataclass
class PySerial(Driver, ConsoleDriver):
    """A serial port: ``url`` is any pyserial URL, ``loop://`` an in-memory echo.

    Config: ``url``, ``baudrate`` (default 115200), ``scrollback`` (bytes kept, default 1 MiB),
    ``reopen_interval`` (seconds between attempts to reopen a vanished port).
    """

    client = CLIENT
    upstream_client = UPSTREAM_CLIENT

    url: str
    baudrate: int = 115200
    scrollback: int = DEFAULT_CAPACITY
    reopen_interval: float = 0.5
    console: Console = field(init=False, repr=False)

    def __post_init__(self):
        if self.reopen_interval <= 0:
            raise ValueError(f"reopen_interval must be > 0 seconds, got {self.reopen_interval}")
        self.console = Console(self.scrollback)
        self._streams: set[Any] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._port: Any = None
        if self.url == LOOP_URL:
            self._thread = None
            return
        self._port = self._open(first=True)
        self._thread = threading.Thread(target=self._run, name=f"serial {self.url}", daemon=True)
        self._thread.start()

    # the port
    def _open(self, first: bool = False) -> Any:
        """Open the URL; None while the device is absent. A malformed URL raises ValueError."""
        try:
            # exclusive: a second exporter retrying the same device node must not share it
            # (each would get half the bytes); pyserial ignores it for non-local URLs
            port = serial.serial_for_url(self.url, baudrate=self.baudrate, exclusive=True, do_not_open=True)
            port.timeout = None if hasattr(port, "cancel_read") else READ_TIMEOUT
            port.open()
            return port
        except ValueError as exc:
            raise ValueError(f"serial url {self.url!r}: {exc}") from None
        except (serial.SerialException, OSError) as exc:
            if first:
                self.logger.warning("%s not present (%s); waiting for it", self.url, exc)
                self.console.event(f"port absent ({self.url}), waiting for it")
            return None

    def _run(self) -> None:
        """Reader thread: copy port bytes into the console; reattach when the port vanishes."""
        while not self._stopped.is_set():
            port = self._port
            if port is None:
                port = self._open()
                if port is None:
                    self._stopped.wait(self.reopen_interval)  # the retry period, not a sleep-and-hope
                    continue
                with self._lock:
                    self._port = port
                self.logger.info("%s reopened", self.url)
                self.console.event("port reopened")
            try:
                self._pump(port)
            except (serial.SerialException, OSError, TypeError) as exc:
                # pyserial raises TypeError from read() when the port is closed under it
                if self._stopped.is_set():
                    break
                self.logger.warning("%s gone (%s); reattaching", self.url, exc)
                self.console.event("port gone, reattaching")
                self._drop_port()

    def _pump(self, port: Any) -> None:
        while not self._stopped.is_set():
            data = port.read(1)
            if data:
                waiting = port.in_waiting
                self.console.append(data + port.read(waiting) if waiting else data)

    def _drop_port(self) -> None:
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def write(self, data: bytes) -> None:
        """Send bytes to the port (``loop://`` echoes them into the console).

        Raises ``OSError`` when the port is absent or the write fails: the bytes were not sent.
        """
        if self.url == LOOP_URL:
            self.console.append(data)
            return
        with self._lock:
            port = self._port
            if port is None:
                raise OSError(f"{self.url} is absent (reattaching): {len(data)} bytes not sent")
            try:
                port.write(data)
            except (serial.SerialException, OSError) as exc:
                raise OSError(f"{self.url}: write failed ({exc}): {len(data)} bytes not sent") from None

    def _with_port(self, action: str, apply) -> None:
        with self._lock:
            if self._port is None:
                if self.url == LOOP_URL:
                    return  # the echo has no modem lines
                raise OSError(f"{self.url}: cannot {action}: the port is absent (reattaching)")
            try:
                apply(self._port)
            except OSError as exc:
                if exc.errno == errno.ENOTTY:  # ptys and some adapters have no modem lines
                    raise NotImplementedError(
                        f"{self.url}: cannot {action}: this port has no modem lines"
                    ) from None
                raise

    # wire methods
    @exportstream
    def connect(self):
        """Raw bytes both ways: live output only (no replay, no markers), input to the port."""
        stream = _LoopConnection(self) if self.url == LOOP_URL else _LiveConnection(self)
        self._streams.add(stream)
        return stream

    @exportstream
    def transmit(self):
        """Write-only byte stream to the port: what our clients use to type."""
        stream = _Transmit(self)
        self._streams.add(stream)
        return stream

    @export
    def close(self) -> None:
        """Force-close every open ``connect`` stream (the console keeps running)."""
        for stream in list(self._streams):
            stream.close()

    @export
    def set_dtr(self, value: bool) -> None:
        """Set the DTR modem line."""
        self._with_port("set DTR", lambda port: setattr(port, "dtr", bool(value)))

    @export
    def set_rts(self, value: bool) -> None:
        """Set the RTS modem line."""
        self._with_port("set RTS", lambda port: setattr(port, "rts", bool(value)))

    @export
    def send_break(self, duration: float = 0.25) -> None:
        """Send a break condition for ``duration`` seconds."""
        if duration <= 0:
            raise ValueError(f"duration must be > 0 seconds, got {duration}")
        self._with_port("send a break", lambda port: port.send_break(duration))

    @export(readonly=True)
    def offset(self) -> int:
        """The console's end offset: where a reader starting now begins."""
        return self.console.end

    def teardown(self) -> None:
        """Stop the reader thread and release the port (the exporter is stopping)."""
        self._stopped.set()
        self.close()
        with self._lock:
            port = self._port
        if port is not None and hasattr(port, "cancel_read"):
            port.cancel_read()
        if self._thread is not None:
            self._thread.join(5)
        self._drop_port()
        self.console.close()


class _LiveConnection:
    """``connect`` on a real port: live console bytes out, client bytes to the port."""

    def __init__(self, driver: PySerial):
        self.driver = driver
        self.reader = driver.console.reader(from_end=True)

    async def send(self, data: bytes) -> None:
        await asyncio.to_thread(self.driver.write, data)  # a port write blocks at the baud rate

    async def receive(self) -> bytes:
        while (chunk := await self.reader.read_async()) is not None:
            if chunk.data:
                return chunk.data
        return b""

    async def send_eof(self) -> None:
        self.close()

    def close(self) -> None:
        self.reader.close()
        self.driver._streams.discard(self)


class _LoopConnection(LoopStream):
    """``connect`` on ``loop://``: its own echo (as upstream), also shown in the console."""

    def __init__(self, driver: PySerial):
        super().__init__()
        self.driver = driver

    async def send(self, data: bytes) -> None:
        self.driver.console.append(data)
        await super().send(data)

    def close(self) -> None:
        super().close()
        self.driver._streams.discard(self)


class _Transmit:
    """Write-only stream: bytes go to the port; ``receive`` waits for the end."""

    def __init__(self, driver: PySerial):
        self.driver = driver
        self._ended = Pipe(1)  # never holds an item: get_async() returns once it is closed

    async def send(self, data: bytes) -> None:
        await asyncio.to_thread(self.driver.write, data)

    async def receive(self) -> bytes:
        await self._ended.get_async()
        return b""

    async def send_eof(self) -> None:
        self.close()

    def close(self) -> None:
        self._ended.close()
        self.driver._streams.discard(self)
