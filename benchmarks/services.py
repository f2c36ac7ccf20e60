"""The processes a benchmark run talks to: exporters (ours, upstream), raw servers, echo server.

Each runs in its own process, as it would for a user, and is stopped by the harness.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START_TIMEOUT = 60.0


class Service:
    """A child process that announces its address on a line of output, then serves."""

    def __init__(self, name: str, argv: list[str], ready: str, cwd: Path | None = None):
        self.name, self.argv = name, argv
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            start_new_session=True,  # its own group: stop() ends its children too
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.match = self._wait_for(re.compile(ready))

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for(self, pattern: re.Pattern) -> re.Match:
        while True:
            try:
                line = self._lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                raise RuntimeError(
                    f"{self.name}: no {pattern.pattern!r} within {START_TIMEOUT:.0f} s"
                ) from None
            if line is None:
                raise RuntimeError(
                    f"{self.name} exited ({self.process.wait()}) before serving:\n"
                    + "".join(self.output[-20:])
                )
            self.output.append(line)
            match = pattern.search(line)
            if match:
                threading.Thread(target=self._drain, daemon=True).start()
                return match

    def _drain(self) -> None:
        while self._lines.get() is not None:
            pass  # keep reading so the child never blocks on a full pipe

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass


def free_port() -> int:
    """A loopback port nobody listens on now (upstream's ``jmp run`` needs a fixed one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def echo_server(unix: str | None = None) -> Service:
    return Service(
        "echo server",
        [sys.executable, str(HERE / "echo_server.py"), *([unix] if unix else [])],
        r"serving (\S+)",
    )


def flood_source(rate: int) -> Service:
    return Service(
        "flooding pty", [sys.executable, str(HERE / "flood_source.py"), str(rate)], r"serving (\S+)"
    )


def snmp_agent(directory: Path) -> Service:
    """A private net-snmp agent with a writable outlet table (``snmp_agent.py``)."""
    directory.mkdir(exist_ok=True)
    return Service(
        "snmp agent", [sys.executable, str(HERE / "snmp_agent.py"), str(directory)], r"serving (\S+)"
    )


def raw_server(unix: str) -> Service:
    return Service(
        "raw grpcio server",
        [sys.executable, str(HERE / "raw.py"), "serve", "--socket", unix],
        r"serving tcp=(?P<tcp>\S+) unix=(?P<unix>\S+) sink=(?P<sink>\S+)",
    )


def raw_aio_server(unix: str) -> Service:
    return Service(
        "raw grpc.aio server",
        [sys.executable, str(HERE / "raw.py"), "serve-aio", "--socket", unix],
        r"serving tcp=(?P<tcp>\S+) unix=(?P<unix>\S+)",
    )


def our_exporter(config: str, socket_path: str | None = None) -> Service:
    where = ["--socket", socket_path] if socket_path else ["--listen", "127.0.0.1:0"]
    return Service("our exporter", [_our_command(), "run", config, *where], r"^serving (\S+)")


def our_demo() -> Service:
    return Service(
        "our virtual board", [_our_command(), "demo", "--listen", "127.0.0.1:0"], r"^serving (\S+)"
    )


def farm(boards: int, virtual: int, workdir: Path) -> Service:
    """``boards`` exporters in one pool (``virtual`` of them virtual boards); the match is its config dir."""
    folder = workdir / "farm"
    folder.mkdir(exist_ok=True)
    argv = [sys.executable, str(HERE / "farm.py"), "serve", str(boards), str(virtual), str(folder)]
    return Service("farm", argv, r"^serving (\S+)")


def routed(peer: Path, workdir: Path) -> Service:
    """The test controller and router with upstream's exporter registered; the match is the
    directory holding ``clients/ours.yaml`` and ``clients/upstream.yaml``."""
    folder = workdir / "routed"
    folder.mkdir(exist_ok=True)
    argv = [sys.executable, str(HERE / "controller.py"), str(peer), str(folder)]
    return Service("routed", argv, r"^routed ready (\S+)")


def _our_command() -> str:
    return str(Path(sys.executable).parent / "jumpstarter-jupyter")


def upstream_exporter(peer: Path, config: str) -> Service:
    port = free_port()
    return Service(
        "upstream exporter",
        [
            str(peer / "bin" / "jmp"),
            "run",
            "--exporter-config",
            config,
            "--tls-grpc-listener",
            f"127.0.0.1:{port}",
            "--tls-grpc-insecure",
        ],
        r"Session server started on (\S+:\d+)",
    )


def upstream_peer() -> Path:
    """The upstream 0.9.0 venv, installed on first use by the project's own script."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-upstream-peer.sh")], check=True, capture_output=True, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])
