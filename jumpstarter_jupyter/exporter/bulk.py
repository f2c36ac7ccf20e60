"""The exporter's bulk listener: where clients send uploads' bytes beside gRPC.

The wire is in ``protocol/bulk.py``. The listener sits beside the exporter's own listener (the
same host on a port of its own, or ``SOCKET.bulk`` beside a unix socket), never beside the
private sockets of a controller's leases: those clients are elsewhere. Connections are accepted
on a thread and checked on one each; once its token matches an offer, the connection belongs to
the offer's resource channel and the driver's thread reads it directly.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import ssl
import tempfile
import threading
from pathlib import Path

from jumpstarter_jupyter.driver.resources import Channel
from jumpstarter_jupyter.protocol.bulk import (
    ACCEPTED,
    HANDSHAKE_TIMEOUT,
    TOKEN_BYTES,
    BulkReader,
    receive_exactly,
)

log = logging.getLogger("jumpstarter_jupyter.exporter.bulk")


class BulkListener:
    """Accepts bulk connections and hands each to the channel its token was offered for."""

    def __init__(self, listening: list[socket.socket], offer_address: dict, tls: ssl.SSLContext | None):
        self.listening, self.address, self.tls = listening, offer_address, tls
        self.offers: dict[bytes, Channel] = {}
        self._lock = threading.Lock()
        for each in listening:
            threading.Thread(target=self._accept, args=(each,), name="bulk listener", daemon=True).start()

    @classmethod
    def beside(
        cls, target: str, port: int = 0, tls_cert: str | None = None, tls_key: str | None = None
    ) -> BulkListener:
        """A listener beside the gRPC listener ``target`` (``HOST:PORT`` or ``unix:PATH``).

        Beside ``unix:PATH`` it listens on ``PATH.bulk``. Beside TCP it listens on ``port`` of
        the same host, and also on a unix socket in a folder of its own: clients on this host
        (they reach a loopback address) take that one, which costs half of TCP's work.
        """
        tls = None
        if tls_cert and tls_key:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(tls_cert, tls_key)
        if target.startswith("unix:"):
            path = f"{target[5:]}.bulk"
            Path(path).unlink(missing_ok=True)  # the gRPC socket beside it was claimed: this one is ours
            return cls([_unix_listener(path)], {"path": path}, tls)
        host = target.rpartition(":")[0].strip("[]")
        try:
            tcp = socket.create_server((host, port), family=_family(host), backlog=16)
        except OSError as exc:
            raise OSError(
                f"cannot listen for bulk uploads on {host}:{port}: {exc.strerror or exc} "
                "(--bulk-port picks another port, --no-bulk none)"
            ) from None
        folder = tempfile.mkdtemp(prefix="jumpstarter-bulk-")
        os.chmod(folder, 0o755)  # other users' clients may connect too: their token is what admits them
        path = os.path.join(folder, "bulk.sock")
        return cls([tcp, _unix_listener(path)], {"port": tcp.getsockname()[1], "path": path}, tls)

    def describe(self) -> str:
        """Where uploads come, for the exporter's log line (a firewall must pass the port)."""
        return f"port {self.address['port']}" if "port" in self.address else self.address["path"]

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
        for listening in self.listening:
            try:
                listening.shutdown(socket.SHUT_RDWR)  # wakes its accepting thread
            except OSError:
                pass
            listening.close()
        path = Path(self.address["path"])
        path.unlink(missing_ok=True)
        if "port" in self.address:
            path.parent.rmdir()  # the folder made for it

    def _accept(self, listening: socket.socket) -> None:
        while True:
            try:
                connection, _ = listening.accept()
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
            token = bytearray(TOKEN_BYTES)
            receive_exactly(connection, token)
            with self._lock:
                channel = self.offers.pop(bytes(token), None)
            if channel is None:
                raise PermissionError("no upload was offered under the token it sent")
        except (OSError, ValueError) as exc:
            log.info("refused a bulk connection: %s", exc)
            connection.close()
            return
        reader = BulkReader(connection)
        channel.attach(reader)  # before the client may send, and so before its end of data on the stream
        try:
            connection.sendall(ACCEPTED)
            connection.settimeout(None)
        except OSError as exc:  # the client will send over gRPC
            log.info("lost a bulk connection before it was used: %s", exc)
            reader.admit(False)
            reader.close()
            return
        reader.admit(True)


def _unix_listener(path: str) -> socket.socket:
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(path)
    os.chmod(path, 0o666)  # as the folder: the token admits, not the file mode
    listening.listen(16)
    return listening


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
