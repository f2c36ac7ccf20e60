"""Client side of ``RouterService.Stream``: byte streams and resource transfers."""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

import grpc

from jumpstarter_jupyter.client.connection import Connection, request_json
from jumpstarter_jupyter.client.errors import is_unknown_driver, translate
from jumpstarter_jupyter.errors import ConnectionFailed, DriverTimeout
from jumpstarter_jupyter.protocol import bulk
from jumpstarter_jupyter.protocol.codec import decode, encode
from jumpstarter_jupyter.protocol.frames import GOAWAY_REQUEST, encode_data
from jumpstarter_jupyter.protocol.metadata import BULK_KEY, CONTENT_ENCODING_KEY, REQUEST_KEY, RESOURCE_KEY
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import router_pb2, stream_pb2, stream_pb2_grpc

_EOF = object()  # in the outbox: half-close the request stream
_GOAWAY = object()  # in the outbox: the end of writing (a GOAWAY frame)
_OUR_GOAWAY = stream_pb2.StreamFrame(goaway=True)
CLOSE_FLUSH = 5.0  # seconds close() waits for written bytes to be acknowledged
INBOX_DEPTH = 16  # frames of the driver's bytes read ahead of receive()
OUTBOX_BYTES = 8 << 20  # written bytes waiting for gRPC: 8 frames, or 2 of an upload's 4 MiB ones


class ClientStream:
    """A bidirectional byte stream to a driver: ``send``, ``receive``, ``flush``, ``send_eof``, ``close``.

    ``receive()`` returns ``b""`` at end of stream. Writes pipeline. Against our exporters a
    driver stream is acknowledged (``StreamService``): bytes that cannot be delivered raise
    ``ConnectionFailed`` naming the driver from the next ``send``, ``flush`` or ``close``, and
    ``flush()`` waits until the driver has taken every byte. Upstream exporters acknowledge
    nothing (``RouterService``): there, writes are best effort. Closing cancels the RPC,
    which upstream exporters need: they never end a stream on their own.
    """

    def __init__(self, connection: Connection, path: str, request: dict, label: str, bulk: bool = False):
        self.connection, self.path, self.label = connection, path, label
        self._asked = ((BULK_KEY, "1"),) if bulk else ()  # offer me a bulk connection (protocol/bulk.py)
        self.name = f"{connection.display(path)}.{label}"
        upload = request.get("kind") == "resource"
        self.frame_size = connection.upload_frame_size if upload else connection.frame_size
        self._outbox: queue.Queue[Any]
        self._closed = threading.Event()
        self._eof_sent = self._eof_received = False
        # resource transfers end in their call's result, which says what arrived
        acknowledged = connection.ours and request.get("kind") == "driver"
        self._frame, self._goaway = (
            (_our_frame, _OUR_GOAWAY) if acknowledged else (encode_data, GOAWAY_REQUEST)
        )
        try:
            try:
                self._open(request, acknowledged)
            except grpc.RpcError as err:
                if not self._retry(err):
                    raise
                self._open(
                    {**request, "uuid": connection.uuid(path)}, acknowledged
                )  # the same driver, rebound
        except grpc.RpcError as err:
            raise self._error(err) from None
        self.receipts = _Receipts(self._call, self.name, self._error) if acknowledged else None
        self._responses = iter(self._call)

    def _open(self, request: dict, acknowledged: bool) -> None:
        """Start the RPC and wait for the exporter's answer; ``grpc.RpcError`` if it refused."""
        self._outbox = queue.Queue(maxsize=max(2, min(8, OUTBOX_BYTES // self.frame_size)))
        metadata = (*self.connection.metadata, (REQUEST_KEY, request_json(request)), *self._asked)
        channel = self.connection.channel
        rpc = (
            stream_pb2_grpc.StreamServiceStub(channel).Stream
            if acknowledged
            else self.connection.router_stream
        )
        self._call = rpc(self._requests(self._outbox), metadata=metadata)
        try:
            self.headers = dict(self._call.initial_metadata())
            if not self.headers and self._call.done() and self._call.code() != grpc.StatusCode.OK:
                raise self._call
        except grpc.RpcError:
            self._outbox.put(_EOF)  # ends the request iterator gRPC still reads
            raise

    def _retry(self, err: grpc.RpcError) -> bool:
        """After a refused open: True once the connection is rebound to an exporter that restarted
        (new UUIDs) or reconnected to one that is back; then opening again may succeed."""
        try:
            if is_unknown_driver(err):
                return self.connection.refresh()
            if err.code() == grpc.StatusCode.UNAVAILABLE:
                self.connection.reconnect()
                return True
        except ConnectionFailed:
            pass  # still unreachable: the first error is the one to report
        return False

    def _error(self, err: grpc.RpcError) -> Exception:
        return translate(err, self.connection.endpoint, self.connection.display(self.path), self.label)

    def _requests(self, outbox: queue.Queue):
        item = outbox.get()
        while item is not _EOF:
            if isinstance(item, _Frame):
                yield item.message
                item = outbox.get()
            elif isinstance(item, bytes):
                item, following = self._coalesce(outbox, item)
                yield self._frame(item)
                item = following if following is not None else outbox.get()
            else:
                yield self._goaway
                item = outbox.get()

    def _coalesce(self, outbox: queue.Queue, data: bytes) -> tuple[bytes, Any]:
        """Join writes already waiting into one frame (up to ``frame_size``): fewer, larger
        messages are what lets a pipelined writer go faster than one gRPC message per write."""
        parts, size = [data], len(data)
        while size < self.frame_size:
            try:
                item = outbox.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, bytes) or size + len(item) > self.frame_size:
                return b"".join(parts), item
            parts.append(item)
            size += len(item)
        return b"".join(parts), None

    def _put(self, item: Any) -> None:
        while not self._closed.is_set():
            try:
                self._outbox.put(item, timeout=0.5)
                return
            except queue.Full:
                if self._call.done():
                    break
        raise ConnectionFailed(f"{self.name}: stream closed")

    @property
    def closed(self) -> bool:
        """True once ``close()`` or ``cancel()`` was called."""
        return self._closed.is_set()

    def send(self, data: bytes) -> None:
        """Send bytes (split into frames the exporter accepts).

        Raises ``ConnectionFailed`` once the stream broke under us (the exporter or the
        driver went away), naming the bytes written before that were not delivered.
        """
        if self.receipts is not None:
            self.receipts.count(len(data))
        elif self._call.done() and not self._closed.is_set():
            code = self._call.code()
            raise ConnectionFailed(
                f"{self.name}: the stream ended ({code.name}: "
                f"{self._call.details() or 'no details'}); {len(data)} bytes not sent"
            )
        with memoryview(data) as view:
            for start in range(0, len(view), self.frame_size):
                part = view[start : start + self.frame_size]
                # a whole frame is serialized here, on the writer's thread, in one copy (and
                # the writer may reuse its buffer at once); smaller writes wait to be coalesced
                self._put(_Frame(self._frame(part)) if len(part) == self.frame_size else bytes(part))

    def flush(self, timeout: float | None = 30) -> None:
        """Return once the driver has taken every byte sent so far (our exporters; upstream,
        at once). Raises ``ConnectionFailed`` naming what was lost, ``DriverTimeout`` after
        ``timeout`` s."""
        if self.receipts is not None:
            self.receipts.flush(timeout)

    def receive(self) -> bytes:
        """Next bytes; ``b""`` once the driver side ended."""
        if self._eof_received:
            return b""
        if self.receipts is not None:
            data = self.receipts.receive(self._closed.is_set)
        else:
            data = self._receive_frame()
        self._eof_received = not data
        return data

    def _receive_frame(self) -> bytes:
        try:
            for frame in self._responses:
                if frame.frame_type == router_pb2.FRAME_TYPE_GOAWAY:
                    break
                if frame.payload:
                    return frame.payload
        except grpc.RpcError as err:
            if self._closed.is_set() or err.code() == grpc.StatusCode.CANCELLED:
                return b""
            raise self._error(err) from None
        return b""

    def send_eof(self) -> None:
        """Finish writing: GOAWAY, then half-close (what upstream peers expect)."""
        if not self._eof_sent:
            self._eof_sent = True
            self._put(_GOAWAY)
            self._put(_EOF)

    def close(self) -> None:
        """End the stream. Against our exporters, first wait up to ``CLOSE_FLUSH`` s for the
        bytes sent to be taken; raises ``ConnectionFailed`` if some were not delivered."""
        if self.receipts is not None and not self._closed.is_set():
            self.receipts.flush(CLOSE_FLUSH, quiet=True)
        self.cancel()
        if self.receipts is not None:
            # the reader leaves gRPC once the cancel reaches it: a daemon thread stopped at exit
            # holding the call's lock would deadlock the call's garbage collection
            if self.receipts.thread is not threading.current_thread():
                self.receipts.thread.join(CLOSE_FLUSH)
            self.receipts.check()

    def cancel(self) -> None:
        """End the stream at once: what was not delivered yet is dropped without an error."""
        self._closed.set()
        self._call.cancel()
        with contextlib.suppress(queue.Full):  # a full outbox has a reader: gRPC's, which stops
            self._outbox.put_nowait(_EOF)  # ends the request iterator gRPC still reads
        if self.receipts is not None:
            self.receipts.stop()

    def __enter__(self) -> ClientStream:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:  # the error in flight says what went wrong
            self.cancel()


def _our_frame(data: bytes | memoryview) -> stream_pb2.StreamFrame:
    return stream_pb2.StreamFrame(payload=bytes(data))


class _Frame:
    """In the outbox: a message already built from a whole frame of bytes (nothing to coalesce)."""

    __slots__ = ("message",)

    def __init__(self, message: Any):
        self.message = message


class _Receipts:
    """The reading half of an acknowledged stream, on a thread of its own: the driver's bytes
    wait (a few frames at most) for ``receive()``, the exporter's counts of bytes the driver
    took tell ``flush()`` and ``check()`` what was delivered."""

    def __init__(self, call: Any, name: str, error: Callable[[grpc.RpcError], Exception]):
        self.name, self._call, self._error = name, call, error
        self.sent = self.received = 0
        self.broken: str | None = None  # why the driver takes no more bytes
        self._failure: grpc.RpcError | None = None  # how the RPC failed, if it did
        self._reported = self._stopped = False
        self._inbox: collections.deque[bytes] = collections.deque()  # b"": the driver's EOF
        self._changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, name=f"stream receipts {name}", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for frame in self._call:
                self._take(frame)
        except grpc.RpcError as err:
            with self._changed:
                if err.code() != grpc.StatusCode.CANCELLED:  # a cancelled stream just ends
                    self._failure = err
                self.broken = self.broken or str(self._error(err)).removeprefix(f"{self.name}: ")
        with self._changed:
            self.broken = self.broken or "the exporter ended the stream"
            self._inbox.append(b"")
            self._changed.notify_all()

    def _take(self, frame: stream_pb2.StreamFrame) -> None:
        with self._changed:
            self.received = max(self.received, frame.received)
            if frame.error:
                self.broken = frame.error
            if frame.payload or frame.goaway:
                self._changed.wait_for(lambda: len(self._inbox) < INBOX_DEPTH or self._stopped)
                self._inbox.append(frame.payload)  # empty at GOAWAY: the driver's EOF
            self._changed.notify_all()

    def count(self, size: int) -> None:
        """Count ``size`` bytes about to be sent; raise ``ConnectionFailed`` if the stream broke."""
        with self._changed:
            if self.broken is None:
                self.sent += size
                return
        self.check()
        raise ConnectionFailed(f"{self.name}: the stream broke ({self.broken}); {size} bytes not sent")

    def check(self) -> None:
        """Raise ``ConnectionFailed`` (once) if bytes sent were lost with the stream."""
        with self._changed:
            lost = self.sent - self.received
            if self.broken is None or lost <= 0 or self._reported:
                return
            self._reported = True
        raise ConnectionFailed(f"{self.name}: {lost} bytes written were not delivered: {self.broken}")

    def flush(self, timeout: float | None, quiet: bool = False) -> None:
        with self._changed:
            done = self._changed.wait_for(lambda: self.received >= self.sent or self.broken, timeout)
            waiting = self.sent - self.received
        if quiet:
            return
        if not done:
            raise DriverTimeout(
                self.name, "flush", f"{waiting} bytes not taken by the driver within {timeout} s"
            )
        self.check()

    def receive(self, closed: Callable[[], bool]) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: self._inbox)
            data = self._inbox.popleft() if self._inbox[0] or self._failure is None else b""
            self._changed.notify_all()
            failure = self._failure if not data and not closed() else None
        if failure is not None:
            raise self._error(failure)
        return data

    def stop(self) -> None:
        """The stream is being cancelled: bytes not taken by now are not delivered."""
        with self._changed:
            self._stopped = True
            self.broken = self.broken or "the stream was closed before the driver took them"
            self._changed.notify_all()


Progress = Callable[[int, int | None], None]


def upload(
    connection: Connection,
    path: str,
    method: str,
    source: IO[bytes],
    extra_args: list,
    encoding: str | None = None,
    total: int | None = None,
    progress: Progress | None = None,
    handle_index: int = 0,
) -> Any:
    """Stream ``source`` into a resource and call ``method(*extra_args)`` concurrently, the
    resource's handle inserted at ``handle_index`` (first by default).

    Connected directly to our exporter, the bytes go on a bulk connection beside gRPC
    (``protocol/bulk.py``) when the exporter offers one; otherwise on the stream itself.
    """
    stream = ClientStream(
        connection,
        path,
        {"kind": "resource", "uuid": connection.uuid(path), CONTENT_ENCODING_KEY: encoding},
        method,
        bulk=connection.ours and connection.controller_lease is None,
    )
    with stream:
        call = _call_with_handle(connection, path, method, stream, extra_args, handle_index)
        offer = stream.headers.get(BULK_KEY)
        side = (
            bulk.connect(offer, connection.target, connection.tls_ca, connection.bulk_unreachable)
            if offer
            else None
        )
        try:
            if side is not None:
                with side:
                    call.add_done_callback(lambda f: f.exception() is not None and _shut(side))
                    bulk.send(side, source, lambda sent: progress and progress(sent, total))
            else:
                sent = 0
                for chunk in _chunks(source, stream.frame_size):
                    stream.send(chunk)
                    sent += len(chunk)
                    if progress:
                        progress(sent, total)
            stream.send_eof()
            while stream.receive():  # the exporter's GOAWAY says the driver has finished
                pass
        except (ConnectionFailed, ConnectionError):
            pass  # the call failed and closed the stream or the bulk connection: its error is the one to report
        return _result(connection, path, method, call)


def _shut(connection: socket.socket) -> None:
    """Unblock a send on ``connection`` whose call has failed (the exporter reads no more)."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def _chunks(source: IO[bytes], size: int) -> Iterator[bytes | memoryview]:
    """``source``'s bytes, ``size`` at a time, read into one buffer where ``source`` can
    (``send`` has copied each piece before the next is read): a flash then costs no fresh
    memory per frame, which page faults make dear."""
    if not hasattr(source, "readinto"):
        while chunk := source.read(size):
            yield chunk
        return
    buffer = bytearray(size)
    view = memoryview(buffer)
    while count := source.readinto(buffer):
        yield view[:count]


def download(
    connection: Connection,
    path: str,
    method: str,
    sink: IO[bytes],
    extra_args: list,
    progress: Progress | None = None,
    handle_index: int = 0,
) -> Any:
    """Call ``method(*extra_args)``, a resource's handle inserted at ``handle_index``, and write what
    the driver sends into ``sink``."""
    stream = ClientStream(
        connection,
        path,
        {"kind": "resource", "uuid": connection.uuid(path), CONTENT_ENCODING_KEY: None},
        method,
    )
    with stream:
        call = _call_with_handle(connection, path, method, stream, extra_args, handle_index)
        stream.send_eof()
        received = 0
        while data := stream.receive():
            sink.write(data)
            received += len(data)
            if progress:
                progress(received, None)
        return _result(connection, path, method, call)


def _call_with_handle(
    connection, path, method, stream: ClientStream, extra_args: list, handle_index: int = 0
):
    args = list(extra_args)
    args.insert(handle_index, json.loads(stream.headers[RESOURCE_KEY]))
    request = pb.DriverCallRequest(uuid=connection.uuid(path), method=method, args=[encode(a) for a in args])
    future = connection.exporter.DriverCall.future(request, metadata=connection.metadata)
    future.add_done_callback(lambda f: f.exception() is not None and stream.cancel())
    return future


def _result(connection, path, method, future) -> Any:
    try:
        return decode(future.result().result)
    except grpc.RpcError as err:
        raise translate(err, connection.endpoint, connection.display(path), method) from None
