"""A threaded TCP (or unix socket) echo server: the far end of the network driver's byte stream.

    python benchmarks/echo_server.py      # prints "serving 127.0.0.1:PORT", runs until stdin closes
    python benchmarks/echo_server.py PATH # the same on a unix socket: prints "serving unix:PATH"

Echoes every byte; when the peer half-closes, it half-closes too (the network driver's EOF).
"""

from __future__ import annotations

import socket
import sys
import threading

CHUNK = 1 << 18


def _echo(conn: socket.socket) -> None:
    with conn:
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(CHUNK):
            conn.sendall(data)
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the peer already went away


def serve(listener: socket.socket) -> None:
    """Accept connections for ever, one echoing thread each."""
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def main() -> None:
    if len(sys.argv) > 1:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(sys.argv[1])
        listener.listen(64)
        print(f"serving unix:{sys.argv[1]}", flush=True)
    else:
        listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        host, port = listener.getsockname()
        print(f"serving {host}:{port}", flush=True)
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
    sys.stdin.read()  # the harness closes our stdin (or exits) to stop us


if __name__ == "__main__":
    main()
