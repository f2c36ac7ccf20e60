"""The bulk connection: an upload's bytes on a plain socket beside gRPC (ours at both ends).

gRPC costs a flash most of its time: every 4 MiB message is copied, framed and handed between
threads several times on each side. When a client reaches our exporter directly (not through a
controller's router), it may send a resource's bytes on a second connection instead:

1. The client opens the resource's ``RouterService.Stream`` with ``x-jmp-bulk: 1`` (``BULK_KEY``).
2. An exporter with a bulk listener answers, in the stream's initial metadata, ``x-jmp-bulk``:
   JSON ``{"path": "/...", "port": N, "token": HEX}``. ``path`` is a unix socket on the
   exporter's host (beside the exporter's own socket, or in a folder of its own); ``port``, only
   when the exporter listens on TCP, is a TCP port on the host the client dialled.
3. The client connects: to ``path`` when the exporter is on its host (it dialled a unix socket
   or a loopback address), else, or if that fails, to ``port``; with TLS when its gRPC
   channel uses TLS. It sends the token's 32 bytes; the exporter answers one byte, 0x01, once
   the token matched an offer (anything else, or a closed connection: the client uses gRPC).
   Then the client sends frames: an 8-byte big-endian length and that many bytes; a length
   of 0 ends the data. Then it half-closes the gRPC stream as usual and waits for the driver
   call's result.

The token is random, good for one connection, and handed out only on the authenticated gRPC
stream, so the bulk connection carries the stream's authority and nothing more. A connection
that ends before its 0-length frame is a client gone mid-transfer, never a short image. If the
client cannot connect (a firewall, another host's socket path) or gets no 0x01, it sends over
gRPC as before: the resource stream is open either way. Upstream peers never send
``x-jmp-bulk`` and never see it.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import os
import socket
import ssl
import stat
import struct
import threading
from collections.abc import Callable, Iterable
from typing import IO, Any

log = logging.getLogger("jumpstarter_jupyter.bulk")

TOKEN_BYTES = 32
ACCEPTED = b"\x01"  # the exporter's answer to a token it offered
HEADER = struct.Struct("!Q")  # each frame's length
FRAME = 4 << 20  # the client's frame size: progress is reported per frame
HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to send its token
CONNECT_TIMEOUT = 3.0  # seconds the client tries to connect before falling back to gRPC
SOCKET_BUFFER = (
    4 << 20
)  # a unix socket's send buffer (TCP tunes its own better): 200 KiB costs a wake-up each


class BulkReader:
    """The exporter's end of one bulk connection: ``readinto`` the client's bytes until its end frame."""

    def __init__(self, connection: socket.socket):
        self.connection = connection
        self.left = 0  # bytes of the current frame not read yet
        self.ended = False
        # set once the client was told to send (or will send over gRPC): the reader is queued in
        # its channel before that, so that the client's end of data on the stream comes after it
        self.admitted = threading.Event()

    def admit(self, sending: bool) -> None:
        """The client was told to send here (``sending``), or could not be: then it sends over
        gRPC and this reader yields nothing."""
        self.ended = not sending
        self.admitted.set()

    def readinto(self, buffer: Any) -> int:
        """Copy up to ``len(buffer)`` bytes into ``buffer``; 0 at the end frame. ``BrokenPipeError``
        if the connection ends first (the client went away mid-transfer)."""
        self.admitted.wait()
        if self.ended:
            return 0
        if self.left == 0:
            header = bytearray(HEADER.size)
            receive_exactly(self.connection, header)
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

    def close(self) -> None:
        """Unblock a read in progress and release the socket (any thread)."""
        self.admitted.set()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected any more
        self.connection.close()


def receive_exactly(connection: socket.socket, buffer: bytearray) -> None:
    """Fill ``buffer`` from ``connection``; ``BrokenPipeError`` if the connection ends first."""
    with memoryview(buffer) as view:
        got = 0
        while got < len(view):
            count = connection.recv_into(view[got:])
            if not count:
                raise BrokenPipeError("the client's bulk connection ended before the end of its data")
            got += count


def connect(
    offer: str, target: str, tls_ca: str | None, unreachable: set | None = None
) -> socket.socket | None:
    """The bulk connection an exporter offered (its ``x-jmp-bulk`` answer) to a client whose
    gRPC channel reaches ``target``; None when it cannot be had: then upload over gRPC.

    The offer's socket path is tried when the exporter is on this host (``target`` is a unix
    socket or a loopback address), then its port when ``target`` is TCP. ``tls_ca`` is the
    client's TLS setting (None: plain; ``""``: the system's roots). An address that cannot be
    connected to goes into ``unreachable`` and is skipped while it is there: a firewall that
    drops packets costs ``CONNECT_TIMEOUT`` once, not on every upload.
    """
    unreachable = set() if unreachable is None else unreachable
    try:
        answer = json.loads(offer)
        token = bytes.fromhex(answer["token"])
        if not isinstance(answer.get("path", ""), str) or type(answer.get("port", 0)) is not int:
            raise ValueError(f"path {answer.get('path')!r}, port {answer.get('port')!r}")
    except (ValueError, KeyError, TypeError) as exc:
        log.info("no bulk connection (a bad offer: %s): uploading over gRPC", exc)
        return None
    unix = target.startswith("unix:")
    host = "localhost" if unix else target.rpartition(":")[0].strip("[]")
    tries = []
    if "path" in answer and (unix or is_loopback(host)):
        tries.append((socket.AF_UNIX, answer["path"]))
    if "port" in answer and not unix:
        tries.append((None, (host, answer["port"])))
    for family, address in tries:
        if address in unreachable:
            continue
        try:
            connection = _open(family, address)
        except (OSError, OverflowError) as exc:  # OverflowError: a port out of range
            log.info("no bulk connection at %s (%s): not tried again on this connection", address, exc)
            unreachable.add(address)
            continue
        connection = _handshake(connection, address, host, token, tls_ca)
        if connection is not None:
            return connection
    return None


def _open(family: socket.AddressFamily | None, address: Any) -> socket.socket:
    """A connection to ``address``: a unix socket, or TCP when ``family`` is None."""
    if family is None:
        return socket.create_connection(address, timeout=CONNECT_TIMEOUT)
    connection = socket.socket(family, socket.SOCK_STREAM)
    try:
        connection.settimeout(CONNECT_TIMEOUT)
        connection.connect(address)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    except BaseException:
        connection.close()
        raise
    return connection


def _handshake(
    connection: socket.socket, address: Any, host: str, token: bytes, tls_ca: str | None
) -> socket.socket | None:
    """Present ``token`` on ``connection`` (to ``address``, TLS when ``tls_ca`` is not None)."""
    try:
        if tls_ca is not None:
            context = ssl.create_default_context(cafile=tls_ca or None)
            connection = context.wrap_socket(connection, server_hostname=host)
        connection.sendall(token)
        if connection.recv(1) != ACCEPTED:
            raise ConnectionError("the exporter did not accept the token")
        connection.settimeout(None)
        return connection
    except (OSError, TypeError, ValueError) as exc:
        log.info("no bulk connection at %s (%s)", address, exc)
        connection.close()
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this host's loopback.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("lab-1")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: assume it is reachable from elsewhere
        return False


def send(connection: socket.socket, source: IO[bytes], progress: Callable[[int], None]) -> int:
    """Send all of ``source`` as frames, then the end frame; returns the byte count.

    Bytes of a file go by ``sendfile`` (the kernel sends them from the page cache, no copy
    here): a regular file opened with ``open()``, or a source with a ``file_spans()`` method
    giving ``(fd, offset, length)`` spans of one (the storage client's bmap ranges of a plain
    image). Anything else (a decompressing reader), and everything over TLS, goes by
    ``readinto`` and ``sendall``. ``progress(sent)`` is called after each frame.
    """
    spans = None if isinstance(connection, ssl.SSLSocket) else _file_spans(source)
    sent = 0
    if spans is not None:
        for fd, offset, length in spans:
            for start in range(offset, offset + length, FRAME):
                count = min(FRAME, offset + length - start)
                connection.sendall(HEADER.pack(count))
                _sendfile(connection, fd, start, count)
                sent += count
                progress(sent)
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


def _file_spans(source: IO[bytes]) -> Iterable[tuple[int, int, int]] | None:
    """What of ``source`` can go by ``sendfile``, as ``(fd, offset, length)`` spans; None: nothing.

    Only ``open()``'s own readers count as plain files: a reader that transforms its file's
    bytes (``GzipFile``) has a ``fileno()`` too.
    """
    spans = getattr(source, "file_spans", None)
    if spans is not None:
        return spans()
    if not isinstance(source, (io.BufferedReader, io.FileIO)):
        return None
    info = os.fstat(source.fileno())
    if not stat.S_ISREG(info.st_mode):
        return None
    start = source.tell()
    source.seek(info.st_size)  # read, as far as its reader is concerned: sendfile leaves the position
    return [(source.fileno(), start, info.st_size - start)]


def _sendfile(connection: socket.socket, fd: int, offset: int, count: int) -> None:
    done = 0
    while done < count:
        sent = os.sendfile(connection.fileno(), fd, offset + done, count - done)
        if not sent:
            raise ValueError(f"the file ends at byte {offset + done}, before the bytes to send do")
        done += sent


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
