"""Python API of serial consoles: ``write``, ``sendline``, ``expect``, ``read``, ``log``.

Against our exporters the client follows the exporter's console (``ConsoleService.Follow``)
from the offset the console had when this client was built, so
``dut.power.on(); dut.serial.expect("login:")`` sees the whole boot even though the console reader
thread starts on first use. Against upstream exporters, which keep no scrollback, it reads a
``connect`` stream opened when the client is built, and says so in the output.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import click
import grpc
import pexpect

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.client.errors import translate
from jumpstarter_jupyter.drivers.serial.common import Chunk, ConsoleSpawn, ExpectTimeout, dropped_text, marker
from jumpstarter_jupyter.errors import ConnectionFailed, DriverError, DriverTimeout, JumpstarterError
from jumpstarter_jupyter.protocol.metadata import UNKNOWN_DRIVER
from jumpstarter_jupyter.protocol.v1 import console_pb2

NO_SCROLLBACK = "no scrollback: this exporter keeps none (upstream); showing output from now on"
RETRY_INTERVAL = 1.0  # seconds between attempts to re-follow a console after the connection broke
LOCAL_LOG = 4 << 20  # bytes of output kept locally against upstream exporters
CLOSE_FLUSH = 5.0  # seconds close() waits for written bytes to be acknowledged
Subscriber = Callable[[Chunk], None]


class SerialClient(DriverClient):
    """``dut.serial``: a serial console with pexpect-style ``expect``.

    A ``loop://`` port echoes what is written, so its own line comes back:

    >>> from jumpstarter_jupyter.drivers.serial.driver import PySerial
    >>> from jumpstarter_jupyter.testing import serve
    >>> with serve(PySerial(url="loop://")) as serial:
    ...     serial.sendline("hello board")
    ...     serial.expect(["goodbye", r"hello (\\w+)"], timeout=5)
    ...     serial.match.group(1)
    1
    'board'

    The virtual board boots to a login prompt on its console:

    >>> from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
    >>> with serve(VirtualBoard.create()) as dut:
    ...     dut.power.on()
    ...     dut.serial.expect("login:", timeout=60)
    ...     dut.serial.sendline("root")
    ...     dut.serial.expect_exact("# ", timeout=10)
    0
    0
    """

    widget = "jumpstarter_jupyter.drivers.serial.widget.SerialWidget"
    linesep = "\n"

    def __init__(self, connection, path, entry):
        super().__init__(connection, path, entry)
        self._lock = threading.RLock()
        self._delivered = threading.Condition(self._lock)
        self._end = 0  # console offset up to which the console reader has delivered
        self._stopping = threading.Event()
        self._subscribers: list[Subscriber] = []
        self._local_log = bytearray()
        self._spawn = ConsoleSpawn(self.write)
        self._thread: threading.Thread | None = None
        self._call: Any = None
        self._tx: Any = None
        self.scrollback_supported = bool(connection.ours and self.methods and "offset" in self.methods)
        if self.scrollback_supported:
            # the offset means something in this exporter run only: the console reader, however
            # late it starts, tells the exporter which run it is from
            self._origin, self._epoch = int(self.call("offset")), connection.report.uuid
            return
        try:  # no replay upstream: listen from now on, before the user powers the board on
            self._start()
        except JumpstarterError as exc:  # e.g. the port is absent: the rest of the tree still works
            self._deliver(Chunk(0, event=f"console not open: {exc}"))

    # following the console
    def _start(self) -> None:
        """Start the console reader unless it runs; upstream, (re)open the ``connect`` stream it reads."""
        with self._lock:
            if self._stopping.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            if not self.scrollback_supported:
                self._tx = self.stream("connect")  # upstream: also the stream writes go to
            target = self._follow_ours if self.scrollback_supported else self._follow_upstream
            self._thread = threading.Thread(
                target=target, name=f"serial console reader {self.display_path}", daemon=True
            )
            self._thread.start()

    def _follow_ours(self) -> None:
        offset, reported = self._origin, False
        while not self._stopping.is_set():
            try:
                request = console_pb2.FollowRequest(
                    uuid=self.connection.uuid(self.path), offset=offset, epoch=self._epoch
                )
                self._call = self.connection.console.Follow(request, metadata=self.connection.metadata)
                for chunk in self._call:
                    self._epoch = chunk.epoch or self._epoch
                    self._deliver(Chunk(chunk.offset, chunk.data, chunk.dropped, chunk.event))
                    offset, reported = chunk.offset + len(chunk.data), False
            except (grpc.RpcError, ConnectionFailed) as err:
                if self._stopping.is_set():
                    return
                if not reported:  # once per outage, not once per retry
                    reason = err.code().name if isinstance(err, grpc.RpcError) else str(err)
                    self._deliver(Chunk(offset, event=f"console connection lost ({reason}); retrying"))
                    reported = True
                self._drop_transmit()  # its RPC died too: the next write opens a new one
            if self._stopping.wait(RETRY_INTERVAL):  # the retry period; release() ends it at once
                return
            try:  # a restarted exporter has new driver UUIDs; its console says it restarted
                self.connection.refresh()
            except ConnectionFailed:
                pass  # still down: try again later

    def _drop_transmit(self) -> None:
        with self._lock:
            stream, self._tx = self._tx, None
        if stream is not None:
            stream.close()

    def _follow_upstream(self) -> None:
        offset = self._end  # offsets stay monotonic across reopened streams (no history to match)
        self._deliver(Chunk(offset, event=NO_SCROLLBACK))
        try:
            while data := self._tx.receive():
                self._deliver(Chunk(offset, data))
                offset += len(data)
        except ConnectionFailed as exc:
            if not self._stopping.is_set():
                self._deliver(Chunk(offset, event=f"console stream failed: {exc}"))
            return
        self._deliver(Chunk(offset, event="console stream ended; the next use reopens it"))

    def _deliver(self, chunk: Chunk) -> None:
        text = (marker(dropped_text(chunk.dropped)) if chunk.dropped else b"") + chunk.data
        if chunk.event:
            text += marker(chunk.event)
        self._spawn.feed(text)
        with self._lock:
            self._end = chunk.offset + len(chunk.data)
            self._delivered.notify_all()
            if not self.scrollback_supported:
                self._local_log += text
                del self._local_log[:-LOCAL_LOG]
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(chunk)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(chunk)`` from the console reader thread for every chunk; returns unsubscribe."""
        with self._lock:
            self._subscribers.append(callback)
        self._start()
        return lambda: self._unsubscribe(callback)

    def _unsubscribe(self, callback: Subscriber) -> None:
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def release(self) -> None:
        """Stop following and close the streams (``dut.close()`` calls this).

        Raises ``ConnectionFailed`` if bytes written before could not be delivered.
        """
        self._stopping.set()
        if self._call is not None:
            self._call.cancel()
        tx = self._tx
        if isinstance(tx, _Transmitter):
            tx.flush(CLOSE_FLUSH, quiet=True)
        if tx is not None:
            tx.close()
        self._spawn.feed_eof()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        if isinstance(tx, _Transmitter):
            tx.check()

    # writing
    def write(self, data: bytes | str) -> None:
        """Send bytes (text is UTF-8 encoded) to the serial port.

        Writes pipeline: this returns once the bytes are on their way. Against our exporters
        every byte is acknowledged, and bytes that could not be delivered raise
        ``ConnectionFailed`` from this or the next ``write``, ``flush``, ``expect`` or
        ``close``. Upstream exporters acknowledge nothing: there, writes are best effort.

        >>> from jumpstarter_jupyter.drivers.serial.driver import PySerial
        >>> from jumpstarter_jupyter.testing import serve
        >>> with serve(PySerial(url="loop://")) as serial:   # loop:// echoes what is written
        ...     serial.write(b"AT\\r")
        ...     serial.flush()                                # every byte reached the port
        ...     serial.expect_exact("AT", timeout=5)
        0
        """
        data = data.encode() if isinstance(data, str) else bytes(data)
        self._start()
        with self._lock:
            if self._tx is None or (self.scrollback_supported and self._tx.broken):
                self._tx = self._open_transmit()  # ours; upstream's _start opened `connect`
            stream = self._tx
        stream.send(data)

    def flush(self, timeout: float | None = 30) -> None:
        """Return once every byte written so far has reached the port (our exporters only).

        Raises ``ConnectionFailed`` naming what was lost, or ``DriverTimeout`` after ``timeout`` s.
        """
        with self._lock:
            stream = self._tx
        if isinstance(stream, _Transmitter):
            stream.flush(timeout)

    def _check_delivered(self) -> None:
        with self._lock:
            stream = self._tx
        if isinstance(stream, _Transmitter):
            stream.check()

    def _open_transmit(self) -> Any:
        if not self.scrollback_supported:
            return self.stream("transmit")
        try:
            return _Transmitter(self.connection, self.path, self.display_path)
        except ConnectionFailed as unreachable:
            try:  # the channel may still back off from an exporter that is back
                self.connection.reconnect()
            except ConnectionFailed:
                raise unreachable from None
        except DriverError as exc:
            if exc.remote_type != UNKNOWN_DRIVER:
                raise
            self.connection.refresh()  # the exporter restarted: its drivers have new UUIDs
        return _Transmitter(self.connection, self.path, self.display_path)

    def sendline(self, line: str = "") -> None:
        """Send ``line`` and a line separator (``linesep``, default ``"\\n"``)."""
        self.write(line + self.linesep)

    # reading
    def expect(self, pattern: Any, timeout: float | None = -1) -> int:
        """Wait for ``pattern`` (a regex, or a list; pexpect semantics) in the console output.

        Returns the index of the pattern that matched; ``before``, ``after`` and ``match``
        describe it. ``timeout`` is in seconds (-1: ``self.timeout``, default 30; None: forever).
        Raises :class:`~jumpstarter_jupyter.drivers.serial.common.ExpectTimeout` (a
        ``pexpect.TIMEOUT`` and a ``TimeoutError``) naming what was awaited and what the console
        showed last.
        """
        self._check_delivered()
        return self._expect(self._spawn.expect, "expect", pattern, timeout)

    def expect_exact(self, text: Any, timeout: float | None = -1) -> int:
        """Like :meth:`expect` with plain strings instead of regexes."""
        self._check_delivered()
        return self._expect(self._spawn.expect_exact, "expect_exact", text, timeout)

    def _expect(self, method: Callable[..., int], name: str, pattern: Any, timeout: float | None) -> int:
        self._start()
        try:
            return method(pattern, timeout=timeout)
        except pexpect.TIMEOUT:
            seen = (self._spawn.before or "")[-200:]
            waited = self._spawn.timeout if timeout == -1 else timeout
            raise ExpectTimeout(
                f"{self.display_path}.{name}: {pattern!r} not seen within {waited} s; "
                f"the console showed last: {seen!r}"
            ) from None
        except pexpect.EOF:
            raise ConnectionFailed(
                f"{self.display_path}.{name}: the console ended (client released "
                f"or exporter gone) while waiting for {pattern!r}"
            ) from None

    def discard(self, timeout: float = 10.0) -> None:
        """Forget the output so far: the next ``expect``/``read`` sees only what comes after.

        Against our exporters "so far" is exact (up to the console's present end offset,
        waiting up to ``timeout`` s for it to arrive); upstream, it is what has arrived.
        """
        self._start()
        if self.scrollback_supported:
            target = int(self.call("offset"))
            with self._delivered:
                if not self._delivered.wait_for(lambda: self._end >= target, timeout):
                    raise ExpectTimeout(
                        f"{self.display_path}.discard: the console did not reach offset "
                        f"{target} within {timeout} s"
                    )
        self._spawn.take()

    def read(self, timeout: float = 0) -> str:
        """Output received since the last ``expect``/``read``; waits up to ``timeout`` s for some."""
        self._start()
        text = self._spawn.take()
        if text or timeout <= 0:
            return text
        try:
            return self._spawn.read_nonblocking(1 << 20, timeout) + self._spawn.take()
        except (pexpect.TIMEOUT, pexpect.EOF):
            return ""

    @property
    def timeout(self) -> float:
        """Default ``expect`` timeout in seconds."""
        return self._spawn.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._spawn.timeout = value

    @property
    def before(self) -> str:
        """Text before the last match."""
        return self._spawn.before

    @property
    def after(self) -> str:
        """The text the last pattern matched."""
        return self._spawn.after

    @property
    def match(self) -> Any:
        """The ``re.Match`` of the last ``expect``."""
        return self._spawn.match

    def scrollback(self) -> bytes:
        """The console so far as raw bytes, with in-band markers for gaps and port events.

        Our exporters return everything their ring holds (the boot log even when this client
        attached later); against upstream, what this client received since it was built.
        """
        if not self.scrollback_supported:
            with self._lock:
                return marker(NO_SCROLLBACK) + bytes(self._local_log)
        out = bytearray()
        for chunk in self.history():
            out += (marker(dropped_text(chunk.dropped)) if chunk.dropped else b"") + chunk.data
            if chunk.event:
                out += marker(chunk.event)
        return bytes(out)

    def history(self) -> list[Chunk]:
        """The exporter's scrollback as chunks with absolute offsets (empty against upstream).

        A reader that calls ``subscribe()`` first and then reads the history misses nothing: the
        history ends at or after the first offset the subscription delivers.
        """
        if not self.scrollback_supported:
            return []
        request = console_pb2.FollowRequest(uuid=self.connection.uuid(self.path), offset=-1, snapshot=True)
        try:
            return [
                Chunk(c.offset, c.data, c.dropped, c.event)
                for c in self.connection.console.Follow(request, metadata=self.connection.metadata)
            ]
        except grpc.RpcError as err:
            raise translate(err, self.connection.endpoint, self.display_path, "history") from None

    def log(self) -> str:
        """The console log so far as text (see :meth:`scrollback`)."""
        return self.scrollback().decode("utf-8", errors="replace")

    # modem lines
    def set_dtr(self, value: bool) -> None:
        """Set the DTR line."""
        self.call("set_dtr", bool(value))

    def set_rts(self, value: bool) -> None:
        """Set the RTS line."""
        self.call("set_rts", bool(value))

    def send_break(self, duration: float = 0.25) -> None:
        """Send a break for ``duration`` seconds."""
        self.call("send_break", duration)

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.serial.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group


class _Transmitter:
    """Bytes to the console over ``ConsoleService.Transmit``, acknowledged by the exporter.

    ``send`` queues (writes pipeline); a thread reads the acknowledgements. Once the stream
    breaks, bytes sent but never acknowledged are reported by ``check`` (from the next
    ``send``, ``flush``, ``expect`` or ``close``) as ``ConnectionFailed``, once.
    """

    def __init__(self, connection: Any, path: str, display: str):
        self.display, self.endpoint = display, connection.endpoint
        self.sent = self.acked = 0
        self.broken: str | None = None  # why the stream ended
        self._reported = False
        self._changed = threading.Condition()
        self._requests: queue.Queue[console_pb2.TransmitRequest | None] = queue.Queue()
        self._requests.put(console_pb2.TransmitRequest(uuid=connection.uuid(path)))
        self._call = connection.console.Transmit(iter(self._requests.get, None), metadata=connection.metadata)
        self._call.initial_metadata()  # the exporter answers once it found the port (or refuses)
        if self._call.done():
            self._requests.put(None)
            raise translate(self._call, self.endpoint, display, "write")
        threading.Thread(target=self._read_acks, name=f"serial transmit {display}", daemon=True).start()

    def _read_acks(self) -> None:
        reason = "the exporter ended the stream"
        try:
            for ack in self._call:
                with self._changed:
                    self.acked = ack.written
                    self._changed.notify_all()
        except grpc.RpcError as err:
            reason = str(translate(err, self.endpoint, self.display, "write"))
        with self._changed:
            self.broken = reason
            self._changed.notify_all()

    def send(self, data: bytes) -> None:
        self.check()
        with self._changed:
            self.sent += len(data)
        self._requests.put(console_pb2.TransmitRequest(data=data))

    def check(self) -> None:
        """Raise ``ConnectionFailed`` (once) if sent bytes were lost with the stream."""
        with self._changed:
            lost = self.sent - self.acked
            if self.broken is None or not lost or self._reported:
                return
            self._reported = True
        raise ConnectionFailed(
            f"{self.display}.write: {lost} bytes written were not delivered: {self.broken}"
        )

    def flush(self, timeout: float | None, quiet: bool = False) -> None:
        with self._changed:
            done = self._changed.wait_for(lambda: self.acked >= self.sent or self.broken, timeout)
        if quiet:
            return
        if not done:
            raise DriverTimeout(
                self.display, "flush", f"{self.sent - self.acked} bytes not acknowledged within {timeout} s"
            )
        self.check()

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()
