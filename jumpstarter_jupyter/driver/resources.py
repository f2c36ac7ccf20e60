"""Resource channels: bytes a client streams to or from one driver call.

A client opens ``RouterService.Stream`` with ``{"kind": "resource", ...}``; the exporter
registers a :class:`Channel` under a new UUID and hands the client a *handle*
(``{"kind": "client_stream", "uuid": ..., "x_jmp_content_encoding": ...}``). The client then
passes that handle as an argument to a driver method (``storage.write(handle)``), which opens
it with :meth:`Driver.resource` and reads or writes it like a file. An upload's bytes may
come on a bulk connection instead of the stream (``protocol/bulk.py``): the exporter hands
the channel a :class:`~jumpstarter_jupyter.protocol.bulk.BulkReader`, which the driver's
reads then drain directly, without the event loop in between.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zstandard

from jumpstarter_jupyter.driver.cancel import current_token
from jumpstarter_jupyter.driver.sync import Pipe
from jumpstarter_jupyter.protocol.bulk import BulkReader
from jumpstarter_jupyter.protocol.metadata import CONTENT_ENCODING_KEY

ENCODINGS = ("gzip", "xz", "bz2", "zstd")
QUEUE_FRAMES = 32  # bounded like upstream: a writer blocks when nobody reads
# and in bytes: our clients' frames are 4 MiB, and a slow card must not let the exporter hold
# (and the client's progress run ahead by) 32 of them
QUEUE_BYTES = 8 << 20


class Channel:
    """Two bounded byte pipes between the exporter's stream handler and a driver thread.

    Inbound items are client bytes, ``b""`` the client's end of data, or a :class:`BulkReader`
    whose bytes come next; a pipe closed before that end means the client went away
    mid-transfer. Outbound ``None`` ends the stream.
    """

    def __init__(self, encoding: str | None = None):
        self.uuid = str(uuid.uuid4())
        self.encoding = encoding
        self.inbound = Pipe(QUEUE_FRAMES, QUEUE_BYTES)  # client -> driver
        self.outbound = Pipe(QUEUE_FRAMES, QUEUE_BYTES)  # driver -> client
        self.bulk: BulkReader | None = None

    def handle(self) -> dict:
        return {"kind": "client_stream", "uuid": self.uuid, CONTENT_ENCODING_KEY: self.encoding}

    async def end_of_input(self) -> None:
        """The client finished sending (exporter side)."""
        await self.inbound.put_async(b"")

    def attach(self, bulk: BulkReader) -> None:
        """The client's bytes continue on ``bulk`` (the exporter's bulk listener, any thread)."""
        self.bulk = bulk
        if not self.inbound.put(bulk):
            bulk.close()  # the stream has ended meanwhile

    def abort(self) -> None:
        """The stream ended: unblock the driver; what the client did not finish is an error."""
        self.inbound.close()
        self.outbound.close()
        if self.bulk is not None:
            self.bulk.close()


class ResourceFile:
    """The driver's view of a channel: ``read(n)`` client bytes, ``write(data)`` to the client.

    Both block the driver's thread while the client is slow, and end with
    :class:`~jumpstarter_jupyter.driver.cancel.Cancelled` if the driver call is cancelled.
    """

    def __init__(self, channel: Channel):
        self.channel = channel
        self._pending = memoryview(b"")  # the rest of the client's last frame
        self._bulk: BulkReader | None = None  # the client's bytes come from here until its end frame
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all with -1); ``b""`` at the client's EOF."""
        if size < 0:
            return b"".join(iter(lambda: self.read(QUEUE_BYTES), b""))
        if size == 0 or not self._wait():
            return b""
        if self._bulk is None:
            out, self._pending = bytes(self._pending[:size]), self._pending[size:]
            return out
        buffer = bytearray(size)
        with memoryview(buffer) as view:
            return bytes(view[: self.readinto(buffer)])

    def readinto(self, buffer: Any) -> int:
        """Copy up to ``len(buffer)`` bytes into ``buffer`` (one copy: a flash's bytes are many);
        0 at the client's EOF."""
        while len(buffer) and self._wait():
            if self._bulk is None:
                count = min(len(buffer), len(self._pending))
                buffer[:count] = self._pending[:count]
                self._pending = self._pending[count:]
                return count
            token = current_token()
            try:
                with token.on_cancel(self._bulk.close):  # a cancelled call stops waiting
                    count = self._bulk.readinto(buffer)
            except OSError:
                token.check()  # closed because the call was cancelled: say that
                if self.channel.inbound.closed:  # closed because the resource stream ended
                    raise BrokenPipeError(
                        "the client closed the resource stream before the end of its data"
                    ) from None
                raise
            if count:
                return count
            self._bulk = None  # its end frame: the client's EOF follows on the stream
        return 0

    def _wait(self) -> bool:
        """Wait for the client's next bytes unless some are pending; False at its EOF."""
        while not self._pending and self._bulk is None and not self._eof:
            data = self.channel.inbound.get()
            if data is None:
                raise BrokenPipeError("the client closed the resource stream before the end of its data")
            if isinstance(data, BulkReader):
                self._bulk = data
            else:
                self._eof = not data
                self._pending = memoryview(data)
        return bool(self._pending) or self._bulk is not None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        """Send bytes to the client (blocks while the client is slow)."""
        if data and not self.channel.outbound.put(bytes(data)):
            raise BrokenPipeError("the client closed the resource stream")
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """The driver is done: end the client's stream and drop whatever it still sends."""
        self.channel.inbound.close()
        if self.channel.bulk is not None:
            self.channel.bulk.close()
        self.channel.outbound.put(None)


class Resources:
    """The channels registered for one driver, by resource UUID."""

    def __init__(self):
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()

    def register(self, encoding: str | None) -> Channel:
        channel = Channel(encoding)
        with self._lock:
            self._channels[channel.uuid] = channel
        return channel

    def forget(self, channel: Channel) -> None:
        with self._lock:
            self._channels.pop(channel.uuid, None)

    @contextmanager
    def open(self, handle: Any) -> Iterator[Any]:
        if not isinstance(handle, dict) or handle.get("kind") != "client_stream":
            raise ValueError(
                f"expected a resource handle {{'kind': 'client_stream', 'uuid': ...}}, got {handle!r}"
            )
        with self._lock:
            channel = self._channels.pop(str(handle.get("uuid")), None)
        if channel is None:
            raise KeyError(f"no open resource {handle.get('uuid')!r} on this driver")
        raw = ResourceFile(channel)
        try:
            yield decoded(raw, handle.get(CONTENT_ENCODING_KEY))
        finally:
            raw.close()


def decoded(raw: Any, encoding: str | None) -> Any:
    """A reader decompressing ``raw`` (a binary file object) as ``encoding`` says (None: ``raw`` itself)."""
    if not encoding:
        return raw
    if encoding == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if encoding == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    if encoding == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw)
    raise ValueError(f"unsupported content encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
