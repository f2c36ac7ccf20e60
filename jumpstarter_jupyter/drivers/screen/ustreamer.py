"""``UStreamer``: Debian's ``ustreamer`` serving a capture device (HDMI grabber, USB camera).

Configured like upstream's ``jumpstarter_driver_ustreamer.driver.UStreamer``: ``executable``
and ``args`` (``{"device": "/dev/video0", "resolution": "1920x1080"}`` become
``--device /dev/video0 --resolution 1920x1080``). ustreamer serves HTTP on a private unix
socket; frames and snapshots are read from it as :class:`HttpVideo` reads any MJPEG source.
Without its device ustreamer keeps running and shows its "NO SIGNAL" picture until the device
appears; ``state()`` then says why.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from jumpstarter_jupyter.driver import SocketStream, export, exportstream
from jumpstarter_jupyter.drivers.screen.httpvideo import HttpVideo

START_TIMEOUT = 10.0  # seconds for ustreamer to open its socket
STOP_TIMEOUT = 5.0  # seconds after SIGTERM before SIGKILL
DEFAULT_DEVICE = "/dev/video0"  # ustreamer's own default
INSTALL_HINT = "`apt-get install ustreamer`"


@dataclass
class UStreamer(HttpVideo):
    """ustreamer on a V4L2 capture device; upstream's ``state``, ``snapshot`` and raw ``connect``."""

    upstream_client = "jumpstarter_driver_ustreamer.client.UStreamerClient"

    executable: str = "ustreamer"
    args: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="jmp-ustreamer-"))
        self.socket_path = self._folder / "ustreamer.sock"
        self.url, self.snapshot_url = "http://localhost/stream", "http://localhost/snapshot"
        super().__post_init__()
        self._start()

    @property
    def device(self) -> str:
        return str(self.args.get("device", DEFAULT_DEVICE))

    @property
    def source(self) -> str:
        return f"UStreamer {self.device}"

    def command_line(self) -> list[str]:
        """ustreamer's argv: ``args`` as ``--key value``, then the private socket."""
        argv = [self.executable]
        for key, value in self.args.items():
            argv += [f"--{key}", str(value)]
        return argv + ["--unix", str(self.socket_path), "--unix-rm"]

    def _start(self) -> None:
        if not shutil.which(self.executable):
            raise FileNotFoundError(f"{self.executable} is not installed: run {INSTALL_HINT}")
        with open(self._folder / "ustreamer.log", "wb") as log:
            self.process = subprocess.Popen(
                self.command_line(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.socket_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"ustreamer exited with {self.process.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self._stop()
                raise TimeoutError(f"ustreamer opened no socket within {START_TIMEOUT} s: {self.log_tail()}")
            time.sleep(0.02)  # polling for the socket file, with the deadline above

    def log_tail(self, size: int = 400) -> str:
        """The end of what ustreamer printed."""
        try:
            return (self._folder / "ustreamer.log").read_text(errors="replace")[-size:].strip()
        except FileNotFoundError:
            return ""

    def _connector(self) -> aiohttp.BaseConnector:
        return aiohttp.UnixConnector(path=str(self.socket_path))

    @export
    async def state(self) -> dict:
        """ustreamer's own ``/state`` (upstream's answer: ``ok``, ``result``), plus ``online``,
        ``width``, ``height``, ``fps`` and ``error`` as every screen reports them."""
        self._check_running()
        raw = json.loads(await self._get("http://localhost/state"))
        source = raw.get("result", {}).get("source", {})
        resolution = source.get("resolution", {})
        online = bool(source.get("online"))
        error = "" if online else self._offline_reason()
        return {
            **raw,
            "source": self.source,
            "keyboard": False,
            "online": online,
            "width": resolution.get("width", 0),
            "height": resolution.get("height", 0),
            "fps": float(source.get("captured_fps", 0)),
            "error": error,
        }

    def _offline_reason(self) -> str:
        if not os.path.exists(self.device):
            return (
                f"no signal: capture device {self.device} does not exist "
                "(ustreamer shows NO SIGNAL until it appears)"
            )
        return f"no signal from {self.device}: {self.log_tail(200)}"

    def _check_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = self.process.returncode if self.process else None
            raise RuntimeError(
                f"{self.source}: ustreamer is not running (exit status {code}): {self.log_tail()}"
            )

    @export
    async def snapshot(self) -> str:
        """ustreamer's ``/snapshot``: the present picture as base64 JPEG."""
        self._check_running()
        return await super().snapshot()

    @exportstream
    async def connect(self) -> SocketStream:
        """A raw byte stream to ustreamer's HTTP server (upstream's ``connect``)."""
        self._check_running()
        reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        return SocketStream(reader, writer)

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def teardown(self) -> None:
        """Stop ustreamer and remove its socket folder."""
        super().teardown()
        self._stop()
        shutil.rmtree(self._folder, ignore_errors=True)
