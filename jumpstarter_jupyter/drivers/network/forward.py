"""A local TCP port tunnelled to a network driver: one byte stream per accepted connection."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Callable

from jumpstarter_jupyter.client.streams import ClientStream
from jumpstarter_jupyter.errors import ConnectionFailed, JumpstarterError

log = logging.getLogger("jumpstarter_jupyter.network")
CHUNK = 1 << 16
JOIN_TIMEOUT = 5.0  # every blocking call is unblocked by close(); this only bounds a bug


class Forwarder:
    """Listen on ``127.0.0.1:local_port`` and tunnel each connection through ``open_stream()``.

    ``address`` is ``"127.0.0.1:PORT"``; ``close()`` stops the listener and every connection.
    A connection whose stream broke (the exporter went away) is reset, not closed, so the
    local program sees the failure; ``check()`` raises for the bytes such a connection had
    taken that were not delivered.
    """

    def __init__(self, open_stream: Callable[[], ClientStream], local_port: int = 0, name: str = "network"):
        self.open_stream, self.name = open_stream, name
        try:
            self.listener = socket.create_server(("127.0.0.1", local_port))
        except OSError as exc:
            raise OSError(f"{name}: cannot listen on 127.0.0.1:{local_port}: {exc.strerror or exc}") from None
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._lost: list[ConnectionFailed] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name=f"forward {self.address}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # the listener was shut down by close()
            threading.Thread(
                target=self._connect, args=(conn,), name=f"forward {self.address} open", daemon=True
            ).start()

    def _connect(self, conn: socket.socket) -> None:
        try:
            stream = self.open_stream()
        except JumpstarterError as exc:
            log.warning("%s: forwarded connection refused: %s", self.name, exc)
            conn.close()
            return
        link = _Link(conn, stream, self._forget, self._record_loss)
        with self._lock:
            if self._closed:
                link.close()
                return
            self._links.add(link)
        link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _record_loss(self, lost: ConnectionFailed) -> None:
        log.warning("%s: a forwarded connection was reset: %s", self.name, lost)
        with self._lock:
            self._lost.append(lost)

    def check(self) -> None:
        """Raise ``ConnectionFailed`` if a forwarded connection lost bytes it had taken."""
        with self._lock:
            lost = list(self._lost)
        if lost:
            more = f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
            raise ConnectionFailed(f"{self.name}.forward: {lost[0]}{more}")

    def close(self) -> None:
        """Stop listening and close every forwarded connection."""
        with self._lock:
            self._closed = True
            links = list(self._links)
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        except OSError:
            pass
        self.listener.close()
        self._thread.join(JOIN_TIMEOUT)
        for link in links:
            link.close()
            link.join()


class _Link:
    """One local connection and its byte stream, copied both ways by two threads."""

    def __init__(
        self,
        conn: socket.socket,
        stream: ClientStream,
        done: Callable[[_Link], None],
        lost: Callable[[ConnectionFailed], None],
    ):
        self.conn, self.stream, self.done, self.lost = conn, stream, done, lost
        self.threads = [
            threading.Thread(target=self._upstream, daemon=True),
            threading.Thread(target=self._downstream, daemon=True),
        ]
        self._remaining = len(self.threads)
        self._lock = threading.Lock()
        self._closing = self._reported = False

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _upstream(self) -> None:
        """Local socket -> driver; local EOF half-closes the stream."""
        try:
            while data := self.conn.recv(CHUNK):
                self.stream.send(data)
            self.stream.send_eof()
        except ConnectionFailed as lost:  # the stream broke: what was read last went nowhere
            self._broken(lost)
        except (OSError, JumpstarterError):
            self.close()  # either side broke: end both directions, not just this one
        self._finished()

    def _downstream(self) -> None:
        """Driver -> local socket; the driver's EOF half-closes the socket."""
        try:
            while data := self.stream.receive():
                self.conn.sendall(data)
            self.conn.shutdown(socket.SHUT_WR)
        except JumpstarterError:  # the stream broke under the link (the exporter went away)
            self._broken(None)
        except OSError:
            self.close()
        self._finished()

    def _finished(self) -> None:
        with self._lock:
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self.close()
            self.done(self)

    def close(self) -> None:
        """End the link: the forward is closing, or the local side or the driver ended."""
        self._closing = True
        try:
            self.stream.close()  # waits for what was sent to be taken
        except ConnectionFailed as lost:
            self._reset(lost)
            return
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def _broken(self, lost: ConnectionFailed | None) -> None:
        """The stream broke: reset the local connection, and report the bytes taken from it
        that were not delivered (``lost``, or what closing the stream finds)."""
        if self._closing:  # the forward is closing: what it drops is its own doing
            self.close()
            return
        if lost is None:
            try:
                self.stream.close()
            except ConnectionFailed as unacknowledged:
                lost = unacknowledged
        self._reset(lost)

    def _reset(self, lost: ConnectionFailed | None) -> None:
        """End the local connection with a reset: a clean end would say the service ended it."""
        self.stream.cancel()
        if lost is not None:
            with self._lock:
                report, self._reported = not self._reported, True
            if report:  # once per connection
                self.lost(lost)
        self._closing = True  # what fails from now on is this reset's doing
        try:
            self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.conn.shutdown(socket.SHUT_RD)  # wakes a recv() of the other thread; sends no FIN
        except OSError:
            pass  # already closed
        self.conn.close()  # the last reference gone, the kernel answers with a reset

    def join(self) -> None:
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join(JOIN_TIMEOUT)
