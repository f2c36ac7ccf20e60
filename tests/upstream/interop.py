"""Helpers of the interop suite: processes in their own process group, ports, upstream's output."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

START_TIMEOUT = 60.0
PASSPHRASE = "s3cret"
IDLE_SECONDS = 135  # > 130 s: upstream pings every 20 s; a default server kills idle streams after ~100 s


def clean_env(peer: Path | None = None) -> dict[str, str]:
    """Our environment without Jumpstarter variables; ``peer``'s bin first on PATH (``j`` must resolve)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUMPSTARTER_", "JMP_", "_JMP_"))}
    if peer is not None:
        env["PATH"] = f"{peer / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"  # upstream's rich logging wraps lines at the terminal width
    return env


class Service:
    """A long-running process in its own process group, its output in a log file."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str]):
        self.argv, self.log_path = argv, log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        """Poll ``ready()`` until it holds; fail with the log if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{what}: not ready after {timeout:.0f} s: {self.argv}\n{self.log()[-3000:]}")
            try:
                self.process.wait(timeout=0.1)  # the pause between polls doubles as the exit check
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"{what}: exited with {self.process.returncode}: {self.argv}\n{self.log()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to the process group we created, SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for processes that need one up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(address: str) -> Callable[[], bool]:
    """A check that ``HOST:PORT`` accepts TCP connections (a gRPC server is listening)."""
    host, _, port = address.rpartition(":")

    def check() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return True
        except OSError:
            return False

    return check


def out(result: subprocess.CompletedProcess) -> str:
    """stdout and stderr of a finished command, for assertion messages."""
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout.decode(errors='replace')[-4000:]}"
        f"\n--- stderr\n{result.stderr.decode(errors='replace')[-4000:]}"
    )


# upstream's rich log lines: "[11/26/26 22:57:50] WARNING  [logger] ..." and their indented continuations
LOG_LINE = re.compile(r"^(\[\d\d/\d\d/\d\d \d\d:\d\d:\d\d\]|\s{8,}(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s)")


def output_lines(result: subprocess.CompletedProcess) -> list[str]:
    """What the command printed on stdout, without upstream's log lines (e.g. missing-driver warnings)."""
    return [line for line in result.stdout.decode(errors="replace").splitlines() if not LOG_LINE.match(line)]


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The ``Error: ...`` lines a failing upstream command printed."""
    return [
        line.strip()
        for line in result.stderr.decode(errors="replace").splitlines()
        if line.startswith("Error:")
    ]
