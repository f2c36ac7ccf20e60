"""Client side of ``RouterService.Stream``: byte streams and resource transfers."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import IO, Any

import grpc

from jumpstarter_jupyter.client.connection import Connection, request_json
from jumpstarter_jupyter.client.errors import translate
from jumpstarter_jupyter.errors import ConnectionFailed
from jumpstarter_jupyter.protocol.codec import decode, encode
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb, router_pb2

_EOF = object()
GOAWAY = router_pb2.StreamRequest(frame_type=router_pb2.FRAME_TYPE_GOAWAY)


class ClientStream:
    """A bidirectional byte stream to a driver: ``send``, ``receive``, ``send_eof``, ``close``.

    ``receive()`` returns ``b""`` at end of stream. Closing cancels the RPC, which upstream
    exporters need: they never end a stream on their own.
    """

    def __init__(self, connection: Connection, path: str, request: dict, label: str):
        self.connection, self.path, self.label = connection, path, label
        self.frame_size = connection.frame_size
        self._outbox: queue.Queue[Any] = queue.Queue(maxsize=8)
        self._closed = threading.Event()
        self._eof_sent = self._eof_received = False
        metadata = (*connection.metadata, ("request", request_json(request)))
        self._call = connection.router.Stream(self._requests(), metadata=metadata)
        try:
            self.headers = dict(self._call.initial_metadata())
        except grpc.RpcError as err:
            raise self._error(err) from None
        if not self.headers and self._call.done() and self._call.code() != grpc.StatusCode.OK:
            raise self._error(self._call)
        self._responses = iter(self._call)

    def _error(self, err: grpc.RpcError) -> Exception:
        return translate(err, self.connection.endpoint, self.connection.display(self.path), self.label)

    def _requests(self):
        item = self._outbox.get()
        while item is not _EOF:
            if isinstance(item, bytes):
                item, following = self._coalesce(item)
                yield router_pb2.StreamRequest(payload=item)
                item = following if following is not None else self._outbox.get()
            else:
                yield item
                item = self._outbox.get()

    def _coalesce(self, data: bytes) -> tuple[bytes, Any]:
        """Join writes already waiting into one frame (up to ``frame_size``): fewer, larger
        messages are what lets a pipelined writer go faster than one gRPC message per write."""
        parts, size = [data], len(data)
        while size < self.frame_size:
            try:
                item = self._outbox.get_nowait()
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
        raise ConnectionFailed(f"{self.connection.display(self.path)}: stream closed")

    def send(self, data: bytes) -> None:
        """Send bytes (split into frames the exporter accepts).

        Raises ``ConnectionFailed`` once the stream has ended under us (the exporter or the
        driver went away): bytes written after that would go nowhere.
        """
        if self._call.done() and not self._closed.is_set():
            code = self._call.code()
            raise ConnectionFailed(f"{self.connection.display(self.path)}.{self.label}: the stream ended "
                                   f"({code.name}: {self._call.details() or 'no details'}); {len(data)} bytes not sent")
        view = memoryview(data)
        for start in range(0, len(view), self.frame_size):
            self._put(bytes(view[start:start + self.frame_size]))

    def receive(self) -> bytes:
        """Next bytes; ``b""`` once the driver side ended."""
        if self._eof_received:
            return b""
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
        self._eof_received = True
        return b""

    def send_eof(self) -> None:
        """Finish writing: GOAWAY, then half-close (what upstream peers expect)."""
        if not self._eof_sent:
            self._eof_sent = True
            self._put(GOAWAY)
            self._put(_EOF)

    def close(self) -> None:
        self._closed.set()
        self._call.cancel()

    def __enter__(self) -> ClientStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Progress = Callable[[int, int | None], None]


def upload(connection: Connection, path: str, method: str, source: IO[bytes], extra_args: list,
           encoding: str | None = None, total: int | None = None, progress: Progress | None = None) -> Any:
    """Stream ``source`` into a resource and call ``method(handle, *extra_args)`` concurrently."""
    stream = ClientStream(connection, path, {"kind": "resource", "uuid": connection.uuid(path),
                                             "x_jmp_content_encoding": encoding}, method)
    with stream:
        call = _call_with_handle(connection, path, method, stream, extra_args)
        sent = 0
        try:
            while chunk := source.read(stream.frame_size):
                stream.send(chunk)
                sent += len(chunk)
                if progress:
                    progress(sent, total)
            stream.send_eof()
            while stream.receive():  # the exporter's GOAWAY says the driver has finished
                pass
        except ConnectionFailed:
            pass  # the call failed and closed the stream: its error is the one to report
        return _result(connection, path, method, call)


def download(connection: Connection, path: str, method: str, sink: IO[bytes], extra_args: list,
             progress: Progress | None = None) -> Any:
    """Call ``method(handle, *extra_args)`` and write what the driver sends into ``sink``."""
    stream = ClientStream(connection, path, {"kind": "resource", "uuid": connection.uuid(path),
                                             "x_jmp_content_encoding": None}, method)
    with stream:
        call = _call_with_handle(connection, path, method, stream, extra_args)
        stream.send_eof()
        received = 0
        while data := stream.receive():
            sink.write(data)
            received += len(data)
            if progress:
                progress(received, None)
        return _result(connection, path, method, call)


def _call_with_handle(connection, path, method, stream: ClientStream, extra_args: list):
    handle = json.loads(stream.headers["resource"])
    request = pb.DriverCallRequest(uuid=connection.uuid(path), method=method,
                                   args=[encode(handle), *(encode(a) for a in extra_args)])
    future = connection.exporter.DriverCall.future(request, metadata=connection.metadata)
    future.add_done_callback(lambda f: f.exception() is not None and stream.close())
    return future


def _result(connection, path, method, future) -> Any:
    try:
        return decode(future.result().result)
    except grpc.RpcError as err:
        raise translate(err, connection.endpoint, connection.display(path), method) from None
