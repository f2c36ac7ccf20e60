"""The exporter's bulk listener: where clients send uploads' bytes beside gRPC.

The wire is in ``protocol/bulk.py``. The listener sits beside the exporter's own listener (the
same host on a port of its own, or ``SOCKET.bulk`` beside a unix socket), never beside the
private sockets of a controller's leases: those clients are elsewhere. Connections are accepted
on a thread and checked on one each; once its token matches an offer, the connection belongs to
the offer's resource channel and the driver's thread reads it directly.
"""

from __future__ import annotations

import logging
import secrets
import socket
import ssl
import threading
from pathlib import Path

from jumpstarter_jupyter.driver.resources import Channel
from jumpstarter_jupyter.protocol.bulk import (
    ACCEPTED,
    HANDSHAKE_TIMEOUT,
    SOCKET_BUFFER,
    TOKEN_BYTES,
    BulkReader,
)

log = logging.getLogger("jumpstarter_jupyter.exporter.bulk")


class BulkListener:
    """Accepts bulk connections and hands each to the channel its token was offered for."""

    def __init__(self, listening: socket.socket, offer_address: dict, tls: ssl.SSLContext | None):
        self.listening, self.address, self.tls = listening, offer_address, tls
        self.offers: dict[bytes, Channel] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="bulk listener", daemon=True).start()

    @classmethod
    def beside(
        cls, target: str, port: int = 0, tls_cert: str | None = None, tls_key: str | None = None
    ) -> BulkListener:
        """A listener beside the gRPC listener ``target`` (``HOST:PORT`` or ``unix:PATH``)."""
        tls = None
        if tls_cert and tls_key:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(tls_cert, tls_key)
        if target.startswith("unix:"):
            path = f"{target[5:]}.bulk"
            Path(path).unlink(missing_ok=True)  # the gRPC socket beside it was claimed: this one is ours
            listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listening.bind(path)
            address: dict = {"path": path}
        else:
            host = target.rpartition(":")[0].strip("[]")
            listening = socket.create_server((host, port), family=_family(host))
            address = {"port": listening.getsockname()[1]}
        listening.listen(16)
        return cls(listening, address, tls)

    def offer(self, channel: Channel) -> dict:
        """What the client needs to send ``channel``'s bytes here (the stream's ``x-jmp-bulk``)."""
        token = secrets.token_bytes(TOKEN_BYTES)
        with self._lock:
            self.offers[token] = channel
        return {**self.address, "token": token.hex()}

    def withdraw(self, offer: dict) -> None:
        """The stream has ended: its token no longer admits a connection."""
        with self._lock:
            self.offers.pop(bytes.fromhex(offer["token"]), None)

    def close(self) -> None:
        try:
            self.listening.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.listening.close()
        if "path" in self.address:
            Path(self.address["path"]).unlink(missing_ok=True)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listening.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._admit, args=(connection,), name="bulk handshake", daemon=True
            ).start()

    def _admit(self, connection: socket.socket) -> None:
        """Take the token; a good one hands the connection to its channel, anything else closes it."""
        try:
            connection.settimeout(HANDSHAKE_TIMEOUT)
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
            token = _receive_exactly(connection, TOKEN_BYTES)
            with self._lock:
                channel = self.offers.pop(token, None)
            if channel is None:
                raise PermissionError("no upload was offered under the token it sent")
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            connection.sendall(ACCEPTED)
            connection.settimeout(None)
        except (OSError, ValueError) as exc:
            log.info("refused a bulk connection: %s", exc)
            connection.close()
            return
        channel.attach(BulkReader(connection))


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"it closed after {len(data)} of the token's {size} bytes")
        data += chunk
    return data


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
