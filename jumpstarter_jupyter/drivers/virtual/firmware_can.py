"""The virtual board's CAN node: what its firmware sends and answers on the board's bus.

While the board's OS runs (kernel, init, shell) the firmware sends a ``Status`` frame every
``STATUS_PERIOD`` seconds (uptime, temperature, LED, button, boot state, a rolling counter)
and answers a ``VersionRequest`` with the running image's version. It is silent while the
board is off, in the bootloader or halted. ``virtual-board.dbc`` beside this module describes
the frames (``DBC``), so a host decodes them with ``dut.can.load_dbc(DBC)``::

    >>> status_data(uptime=12.3, temperature=41.5, led=True, button=False, state=3, counter=7).hex()
    '7b00009f01010307'
    >>> version_data("2.10")[:3]
    b'\\x02\\n\\x00'

The temperature follows the board's load: it settles towards ``AMBIENT + HEATING * amperes``
with a time constant of ``THERMAL_TAU`` simulated seconds, and cools back while off.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import can

from jumpstarter_jupyter.drivers.virtual.boot import State

if TYPE_CHECKING:
    from jumpstarter_jupyter.drivers.virtual.board import Board

DBC = Path(__file__).with_name("virtual-board.dbc")  # the frames below, for cantools and CAN tools
STATUS_ID = 0x100
VERSION_REQUEST_ID = 0x600
VERSION_RESPONSE_ID = 0x601
STATUS_PERIOD = 0.1  # seconds: 10 Hz
RUNNING = {State.KERNEL: 1, State.INIT: 2, State.IDLE: 3}  # the OS runs: the node is on the bus
AMBIENT = 25.0  # degrees Celsius of a cold board
HEATING = 50.0  # degrees Celsius per ampere drawn, once settled
THERMAL_TAU = 2.0  # simulated seconds for the temperature to cover 63 % of a step
STATUS = struct.Struct(
    "<I h B B B"
)  # uptime (24 bits used) | temperature | LED, button bits | state | counter
log = logging.getLogger("driver.VirtualBoard")


def status_data(
    uptime: float, temperature: float, led: bool, button: bool, state: int, counter: int
) -> bytes:
    """The 8 data bytes of a ``Status`` frame (the layout ``virtual-board.dbc`` describes)."""
    packed = STATUS.pack(
        min(round(uptime * 10), 0xFFFFFF),
        round(temperature * 10),
        int(led) | int(button) << 1,
        state,
        counter & 0xFF,
    )
    return packed[:3] + packed[4:]  # uptime takes 24 bits, not the 32 of "I"


def version_data(version: str) -> bytes:
    """The 8 data bytes of a ``VersionResponse``: major, minor, patch (0-255 each), 5 zero bytes.

    The numbers are the first three numeric parts of the image's version text ("2.1" -> 2, 1, 0).
    """
    numbers = [min(int(part), 255) for part in re.findall(r"\d+", version)[:3]]
    return bytes(numbers + [0] * (8 - len(numbers)))


class CanFirmware:
    """The board's CAN node: one thread on the board's own python-can ``virtual`` bus."""

    def __init__(self, board: Board, channel: str):
        self.board, self.channel = board, channel
        self.bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self.temperature = AMBIENT
        self._counter = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"board can {channel}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Send a status frame whenever one is due; answer requests in between."""
        due = last = time.monotonic()
        while not self._stopped.is_set():
            now = time.monotonic()
            if now >= due:
                self._heat(now - last)
                last, due = now, max(due + STATUS_PERIOD, now)  # a late tick is not made up with a burst
                self._send_status()
                continue
            msg = self.bus.recv(due - now)
            if msg is not None:
                self._answer(msg)

    def _heat(self, elapsed: float) -> None:
        """Move the temperature towards what the present current would settle at."""
        target = AMBIENT + HEATING * self.board.reading().current
        self.temperature += (target - self.temperature) * (
            1 - math.exp(-elapsed / (THERMAL_TAU * self.board.pace))
        )

    def _send_status(self) -> None:
        board = self.board
        state = RUNNING.get(board.state)
        if state is None:
            return  # off, in the bootloader or halted: the node is silent
        uptime = board.status()["uptime"]
        data = status_data(
            uptime, self.temperature, bool(board.led.value), bool(board.button.value), state, self._counter
        )
        self._counter += 1
        self._send(STATUS_ID, data)

    def _answer(self, msg: can.Message) -> None:
        image = self.board.image
        if (
            msg.arbitration_id == VERSION_REQUEST_ID
            and not msg.is_extended_id
            and image is not None
            and self.board.state in RUNNING
        ):
            self._send(VERSION_RESPONSE_ID, version_data(image.version))

    def _send(self, ident: int, data: bytes) -> None:
        try:
            self.bus.send(can.Message(arbitration_id=ident, data=data, is_extended_id=False))
        except can.CanError as exc:  # a full bus queue: the frame is lost, as on a real bus
            log.warning("board CAN node: frame 0x%X not sent: %s", ident, exc)

    def stop(self) -> None:
        """Stop the node and leave the bus."""
        self._stopped.set()
        self._thread.join(5)
        self.bus.shutdown()
