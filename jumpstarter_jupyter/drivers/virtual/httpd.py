"""The virtual board's HTTP status service: a real socket on 127.0.0.1, answering only while booted.

The port is reserved when the board is made (bound, not listening: connections are refused),
so the network driver can point at it from the start; booting makes it listen, powering off
closes it and reserves the same port again.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("driver.VirtualBoard")


def _reserve(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind over TIME_WAIT after a reboot
    sock.bind(("127.0.0.1", port))
    return sock


class HttpService:
    """Serves ``status()`` (a dict) as JSON at ``/status`` and as text at ``/``."""

    def __init__(self, status: Callable[[], dict]):
        self.status = status
        self._reserved: socket.socket | None = _reserve()
        self.port: int = self._reserved.getsockname()[1]
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start answering (the board finished booting)."""
        with self._lock:
            if self._server is not None:
                return
            server = ThreadingHTTPServer(
                ("127.0.0.1", self.port), _handler(self.status), bind_and_activate=False
            )
            server.socket.close()
            server.socket = self._reserved or _reserve(self.port)
            self._reserved = None
            server.server_activate()
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, args=(0.1,), name="board http", daemon=True).start()
            self._server = server

    def stop(self, reserve: bool = True) -> None:
        """Stop answering (power off, reboot); keep the port reserved unless the board is going away."""
        with self._lock:
            server, self._server = self._server, None
            if server is not None:
                server.shutdown()
                server.server_close()
            if reserve and self._reserved is None:
                try:
                    self._reserved = _reserve(self.port)
                except OSError as exc:  # someone else took the port meanwhile: the next boot rebinds
                    log.warning("HTTP port %d not reserved: %s", self.port, exc)
            elif not reserve and self._reserved is not None:
                self._reserved.close()
                self._reserved = None


def _handler(status: Callable[[], dict]) -> type[BaseHTTPRequestHandler]:
    class StatusHandler(BaseHTTPRequestHandler):
        server_version = "jumpstarter-board/1.0"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state = status()
            if self.path == "/status":
                self._reply(200, "application/json", json.dumps(state))
            elif self.path == "/":
                lines = [f"{state['os']} {state['version']} on {state['hostname']}"]
                lines += [f"{key}: {state[key]}" for key in ("led", "button", "uptime")]
                self._reply(200, "text/plain", "\n".join(lines) + "\n")
            else:
                self._reply(404, "text/plain", f"no such page: {self.path}\n")

        def _reply(self, code: int, kind: str, body: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
            log.debug("http: " + format, *args)

    return StatusHandler
