"""A private virtual board for one process: started on demand, stopped with it."""

from __future__ import annotations

import atexit
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

from jumpstarter_jupyter.errors import ConnectionFailed

START_TIMEOUT = 30.0


class PrivateBoard:
    """``jumpstarter-jupyter demo`` on a unix socket in a private directory."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="jumpstarter-board-")
        self.socket = os.path.join(self.directory, "board.sock")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jumpstarter_jupyter",
                "demo",
                "--socket",
                self.socket,
                "--stop-on-stdin-eof",
            ],
            # we hold the pipe's write end and never write: if this process dies, even by
            # SIGKILL, the board reads EOF and stops instead of outliving its kernel
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.directory, "exporter.log"), "wb"),
        )
        atexit.register(self.stop)
        self._wait_until_listening()

    @property
    def endpoint(self) -> str:
        return f"unix:{self.socket}"

    def _wait_until_listening(self) -> None:
        """Wait for the exporter's "serving" line on its stdout (or its exit)."""
        deadline = time.monotonic() + START_TIMEOUT
        stdout = self.process.stdout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([stdout], [], [], left)
            line = stdout.readline() if ready else b""
            if line.startswith(b"serving "):
                stdout.close()
                return
            if ready and not line:  # EOF: the exporter exited
                break
        log = open(os.path.join(self.directory, "exporter.log"), errors="replace").read()[-2000:]
        self.stop()
        raise ConnectionFailed(f"the private virtual board did not start:\n{log}")

    def stop(self) -> None:
        self.process.stdin.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
