"""The bulk connection: an upload's bytes on a plain socket beside gRPC (ours at both ends).

gRPC costs a flash most of its time: every 4 MiB message is copied, framed and handed between
threads several times on each side. When a client reaches our exporter directly (not through a
controller's router), it may send a resource's bytes on a second connection instead:

1. The client opens the resource's ``RouterService.Stream`` with ``x-jmp-bulk: 1`` (``BULK_KEY``).
2. An exporter with a bulk listener answers, in the stream's initial metadata, ``x-jmp-bulk``:
   JSON ``{"port": N, "token": HEX}`` (a TCP listener: the client connects to the host it
   dialled, port N) or ``{"path": "/...", "token": HEX}`` (a unix socket beside the exporter's).
3. The client connects (TLS when the exporter serves TLS) and sends the token's 32 bytes; the
   exporter answers one byte, 0x01, once the token matched an offer (anything else, or a
   closed connection: the client uses gRPC). Then the client sends frames: an 8-byte
   big-endian length and that many bytes; a length of 0 ends the data. Then it half-closes
   the gRPC stream as usual and waits for the driver call's result.

The token is random, good for one connection, and handed out only on the authenticated gRPC
stream, so the bulk connection carries the stream's authority and nothing more. A connection
that ends before its 0-length frame is a client gone mid-transfer, never a short image. If the
client cannot connect (a firewall, another host's socket path) or gets no 0x01, it sends over
gRPC as before: the resource stream is open either way. Upstream peers never send ``x-jmp-bulk`` and never see it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import ssl
import stat
import struct
from collections.abc import Callable
from typing import IO, Any

log = logging.getLogger("jumpstarter_jupyter.bulk")

TOKEN_BYTES = 32
ACCEPTED = b"\x01"  # the exporter's answer to a token it offered
HEADER = struct.Struct("!Q")  # each frame's length
FRAME = 4 << 20  # the client's frame size: progress is reported per frame
HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to send its token
CONNECT_TIMEOUT = 3.0  # seconds the client tries to connect before falling back to gRPC
SOCKET_BUFFER = 4 << 20  # socket buffers: a unix socket's default (200 KiB) costs a wake-up per 200 KiB


class BulkReader:
    """The exporter's end of one bulk connection: ``readinto`` the client's bytes until its end frame."""

    def __init__(self, connection: socket.socket):
        self.connection = connection
        self.left = 0  # bytes of the current frame not read yet
        self.ended = False

    def readinto(self, buffer: Any) -> int:
        """Copy up to ``len(buffer)`` bytes into ``buffer``; 0 at the end frame. ``BrokenPipeError``
        if the connection ends first (the client went away mid-transfer)."""
        if self.ended:
            return 0
        if self.left == 0:
            header = bytearray(HEADER.size)
            self._exactly(header)
            (self.left,) = HEADER.unpack(header)
            if self.left == 0:
                self.ended = True
                return 0
        with memoryview(buffer) as view:
            count = self.connection.recv_into(view[: min(len(view), self.left)])
        if not count:
            raise BrokenPipeError("the client's bulk connection ended before the end of its data")
        self.left -= count
        return count

    def _exactly(self, buffer: bytearray) -> None:
        with memoryview(buffer) as view:
            got = 0
            while got < len(view):
                count = self.connection.recv_into(view[got:])
                if not count:
                    raise BrokenPipeError("the client's bulk connection ended before the end of its data")
                got += count

    def close(self) -> None:
        """Unblock a read in progress and release the socket (any thread)."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected any more
        self.connection.close()


def connect(offer: str, target: str, tls_ca: str | None) -> socket.socket | None:
    """The bulk connection an exporter offered (its ``x-jmp-bulk`` answer) to a client whose
    gRPC channel reaches ``target``; None when it cannot be had: then upload over gRPC.

    ``tls_ca`` is the client's TLS setting (None: plain; ``""``: the system's roots).
    """
    try:
        answer = json.loads(offer)
        token = bytes.fromhex(answer["token"])
        if target.startswith("unix:") != ("path" in answer):
            return None  # a socket path on another host, or a port on a host we reach by a path
        if "path" in answer:
            host, connection = "localhost", socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.settimeout(CONNECT_TIMEOUT)
            connection.connect(answer["path"])
        else:
            host = target.rpartition(":")[0].strip("[]")
            connection = socket.create_connection((host, int(answer["port"])), timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("no bulk connection (%s): uploading over gRPC", exc)
        return None
    try:
        if tls_ca is not None:
            connection = ssl.create_default_context(cafile=tls_ca or None).wrap_socket(
                connection, server_hostname=host
            )
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        connection.sendall(token)
        if connection.recv(1) != ACCEPTED:
            raise ConnectionError("the exporter did not accept the token")
        connection.settimeout(None)
        return connection
    except OSError as exc:
        log.info("no bulk connection (%s): uploading over gRPC", exc)
        connection.close()
        return None


def send(connection: socket.socket, source: IO[bytes], progress: Callable[[int], None]) -> int:
    """Send all of ``source`` as frames, then the end frame; returns the byte count.

    A regular file goes by ``sendfile`` (the kernel copies it from the page cache); anything
    else (a decompressing reader, an image's bmap ranges) by ``readinto`` and ``sendall``.
    ``progress(sent)`` is called after each frame.
    """
    sent = 0
    file = _regular_fd(source)
    if file is not None and not hasattr(connection, "context"):  # TLS sockets cannot sendfile
        fd, offset, end = file
        while offset < end:
            length = min(FRAME, end - offset)
            connection.sendall(HEADER.pack(length))
            done = 0
            while done < length:
                count = os.sendfile(connection.fileno(), fd, offset + done, length - done)
                if not count:
                    raise ValueError(f"the file ended at byte {offset + done}, before its size said")
                done += count
            offset += length
            sent += length
            progress(sent)
        source.seek(end)
    else:
        buffer = bytearray(FRAME)
        view = memoryview(buffer)
        while count := _fill(source, view):
            connection.sendall(HEADER.pack(count))
            connection.sendall(view[:count])
            sent += count
            progress(sent)
    connection.sendall(HEADER.pack(0))
    return sent


def _regular_fd(source: IO[bytes]) -> tuple[int, int, int] | None:
    """(fd, position, size) of a plain regular file opened for reading, else None: a reader
    that transforms its file's bytes (``GzipFile``) has a ``fileno()`` too, so only ``open()``'s
    own readers qualify."""
    if not isinstance(source, (io.BufferedReader, io.FileIO)):
        return None
    info = os.fstat(source.fileno())
    return (source.fileno(), source.tell(), info.st_size) if stat.S_ISREG(info.st_mode) else None


def _fill(source: IO[bytes], view: memoryview) -> int:
    """Read into ``view`` until it is full or ``source`` ends."""
    filled = 0
    reader = getattr(source, "readinto", None)
    while filled < len(view):
        if reader is not None:
            count = reader(view[filled:])
        else:
            data = source.read(len(view) - filled)
            count = len(data)
            view[filled : filled + count] = data
        if not count:
            break
        filled += count
    return filled
