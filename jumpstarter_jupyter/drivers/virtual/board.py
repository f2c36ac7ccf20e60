"""The simulated board: a real pty console, a boot sequence, power draw, an LED, a button, a CAN node.

Power on starts a *session* thread: the bootloader checks the image on the storage mux
(:mod:`.image`), the kernel and init print their logs, the HTTP service starts, and the shell
(:mod:`.shell`) takes over at the login prompt. Power off cancels the session wherever it is.
The console is the master side of a pty; the slave's stable symlink ``tty_path`` is what the
PySerial driver opens, exactly as it would open ``/dev/ttyUSB0``. The board's CAN node
(:mod:`.firmware_can`) sits on the python-can ``virtual`` channel ``can_channel``, which the
exporter's ``Can`` driver opens as it would open ``can0``.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from collections.abc import Callable

from jumpstarter_jupyter.drivers.gpio.driver import VirtualLine
from jumpstarter_jupyter.drivers.power.common import PowerReading
from jumpstarter_jupyter.drivers.virtual import boot
from jumpstarter_jupyter.drivers.virtual.boot import CURRENT, State
from jumpstarter_jupyter.drivers.virtual.firmware_can import CanFirmware
from jumpstarter_jupyter.drivers.virtual.httpd import HttpService
from jumpstarter_jupyter.drivers.virtual.image import ImageInfo

log = logging.getLogger("driver.VirtualBoard")
VOLTAGE = 5.0
LED_CURRENT = 0.02  # amperes drawn by the lit LED
WRITE_DEADLINE = 1.0  # seconds a console write may wait for the host to read; then it is lost, like a UART's


class PowerCut(Exception):
    """Raised inside a session when the power goes off."""


class Session:
    """One power-on period: its cancel flag and the keys typed during it."""

    def __init__(self, board: Board):
        self.board = board
        self.cancelled = threading.Event()
        self.keys: queue.Queue[bytes | None] = queue.Queue()
        self._pending = b""
        self.last_key = 0  # read_line pairs CR LF into one Enter
        self.started = time.monotonic()

    def pause(self, seconds: float) -> None:
        """Let simulated time pass (scaled by the board's pace); a power cut ends the session."""
        if self.cancelled.wait(seconds * self.board.pace):
            raise PowerCut

    def key(self) -> int:
        """The next byte typed on the console."""
        while not self._pending:
            data = self.keys.get()
            if data is None:
                raise PowerCut
            self._pending = data
        byte, self._pending = self._pending[0], self._pending[1:]
        return byte

    def flush_keys(self) -> None:
        """Forget typeahead (keys typed while the board was booting are lost, as on hardware)."""
        self._pending = b""
        while True:
            try:
                if self.keys.get_nowait() is None:
                    self.keys.put(None)
                    return
            except queue.Empty:
                return

    def cancel(self) -> None:
        self.cancelled.set()
        self.keys.put(None)


class Board:
    """The board. ``boot_medium()`` returns the image path the bootloader may read, or None."""

    def __init__(
        self, boot_medium: Callable[[], str | None], hostname: str = "jumpstarter", pace: float = 1.0
    ):
        self.boot_medium, self.hostname, self.pace = boot_medium, hostname, pace
        self.button, self.led = VirtualLine(), VirtualLine()
        self.state = State.OFF
        self.image: ImageInfo | None = None
        self.kernel_log: list[str] = []
        self._load = 0.0
        self._session: Session | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.directory = tempfile.mkdtemp(prefix="jumpstarter-board-")
        self.image_path = os.path.join(self.directory, "sdcard.img")
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # the board echoes and translates itself, like a real UART
        os.set_blocking(self._master, False)
        self.tty_path = os.path.join(self.directory, "ttyV0")
        os.symlink(os.ttyname(self._slave), self.tty_path)
        self.http = HttpService(self.status)
        self._wake_r, self._wake_w = os.pipe()
        self._input = threading.Thread(target=self._read_keys, name="board keys", daemon=True)
        self._input.start()
        self.can_channel = f"virtual-board-{os.path.basename(self.directory)}"  # one bus per board
        self.can = CanFirmware(self, self.can_channel)

    # what the power driver sees (PowerTarget)
    @property
    def powered(self) -> bool:
        return self._session is not None

    def set_power(self, on: bool) -> None:
        """Switch the supply: on starts a boot, off cuts everything at once."""
        with self._lock:
            if on and self._session is None:
                self._session = Session(self)
                self._thread = threading.Thread(
                    target=self._run, args=(self._session,), name="board", daemon=True
                )
                self._thread.start()
            elif not on and self._session is not None:
                session, thread, self._session = self._session, self._thread, None
                session.cancel()
                thread.join(10)
                self.enter(State.OFF)

    def reading(self) -> PowerReading:
        """Present voltage and current (a little measurement noise, as on a real supply)."""
        if self.state is State.OFF:
            return PowerReading(0.0, 0.0)
        current = self._load + (LED_CURRENT if self.led.value else 0.0)
        return PowerReading(
            round(VOLTAGE + random.uniform(-0.02, 0.02), 3), round(current + random.uniform(-0.005, 0.005), 4)
        )

    def status(self) -> dict:
        """What the HTTP service reports."""
        session = self._session
        return {
            "os": self.image.name if self.image else None,
            "version": self.image.version if self.image else None,
            "hostname": self.hostname,
            "led": "on" if self.led.value else "off",
            "button": "pressed" if self.button.value else "released",
            "uptime": round(time.monotonic() - session.started, 1) if session else 0.0,
        }

    # the session
    def _run(self, session: Session) -> None:
        try:
            boot.run(self, session)
        except PowerCut:
            pass
        except Exception:  # a simulation bug must show up in the exporter log, not vanish
            log.exception("virtual board crashed")
        finally:
            self.http.stop()
            self.led.set(0)

    def enter(self, state: State) -> None:
        """Move to ``state`` and draw its current."""
        self.state = state
        self._load = CURRENT[state]

    def set_load(self, amperes: float) -> None:
        """Set the current drawn within the present state (the kernel's rising draw)."""
        self._load = amperes

    # the console
    def write(self, text: str) -> None:
        """Print on the console (``\\n`` becomes ``\\r\\n``, as the board's tty would do)."""
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        deadline = time.monotonic() + WRITE_DEADLINE
        while data:
            try:
                data = data[os.write(self._master, data) :]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [self._master], [], left)[1]:
                    return  # nobody is reading the port: the bytes are lost, as on a real UART
            except OSError:
                return  # the board is being dismantled

    def _read_keys(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._master, 1024)
            except BlockingIOError:
                continue
            except OSError:
                return
            session, thread = self._session, self._thread
            if session is not None and thread is not None and thread.is_alive():
                session.keys.put(data)  # a halted board reads nothing: its keys are lost

    def stop(self) -> None:
        """Power off and release the pty, the CAN node, the HTTP port and the board's directory."""
        self.set_power(False)
        self.can.stop()
        self.http.stop(reserve=False)
        os.write(self._wake_w, b"x")
        self._input.join(5)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)
        shutil.rmtree(self.directory, ignore_errors=True)
