"""``VirtualBoard``: the simulated board's root, a composite with orchestration methods.

Its children are the ordinary drivers a real board would have, wired to the simulation::

    dut                 VirtualBoard (flash, boot_to_shell)
    ├─ power            VirtualPower: readings follow the boot
    ├─ serial           PySerial on the board's pty (a real tty, through pyserial)
    ├─ storage          VirtualStorageMux: the board's SD card image
    ├─ network          TcpNetwork to the board's HTTP service (answers only while booted)
    ├─ button           VirtualDigitalOutput: the host presses the user button
    ├─ led              VirtualDigitalInput: the host senses the status LED
    └─ can              Can on the board's python-can virtual bus: status frames, version query

``flash`` and ``boot_to_shell`` read like a strategy: a short list of child calls, and a
failure names the step that failed and what the console showed last.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pexpect

from jumpstarter_jupyter.driver import Cancelled, export
from jumpstarter_jupyter.drivers.can.driver import Can
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.composite.steps import flash_steps, reach_shell, run_steps, watch_console
from jumpstarter_jupyter.drivers.gpio.driver import VirtualDigitalInput, VirtualDigitalOutput
from jumpstarter_jupyter.drivers.network.driver import TcpNetwork
from jumpstarter_jupyter.drivers.power.driver import VirtualPower
from jumpstarter_jupyter.drivers.serial.common import ConsoleSpawn
from jumpstarter_jupyter.drivers.serial.driver import PySerial
from jumpstarter_jupyter.drivers.storage.driver import VirtualStorageMux
from jumpstarter_jupyter.drivers.virtual.board import Board
from jumpstarter_jupyter.drivers.virtual.boot import NO_IMAGE, State
from jumpstarter_jupyter.drivers.virtual.image import make_image
from jumpstarter_jupyter.drivers.virtual.shell import USER

DEFAULT_OS = "Jumpstarter Linux"
DEFAULT_VERSION = "1.0"
LOGIN_PROMPT = r"(?<!Last )login: "  # not the motd's "Last login: ..." line
SHELL_PROMPT = rf"{USER}@[\w.-]+:[^\r\n]*# "
PROMPT_NUDGE = 3.0  # seconds without a prompt from a booted board before pressing Enter again
BOOTING = (State.BOOTLOADER, State.KERNEL, State.INIT)


@dataclass
class VirtualBoard(Composite):
    """A simulated board with power, serial console, storage, network, button, LED and CAN bus.

    Config: ``hostname``, ``os_name``/``os_version`` of the image written at start, and
    ``pace`` (scales the boot's simulated delays; 1.0 boots in about two seconds).
    """

    client = "jumpstarter_jupyter.drivers.virtual.client.VirtualBoardClient"

    hostname: str = "jumpstarter"
    os_name: str = DEFAULT_OS
    os_version: str = DEFAULT_VERSION
    pace: float = 1.0
    board: Board = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pace <= 0:
            raise ValueError(f"pace must be > 0, got {self.pace}")
        self.board = Board(self._boot_medium, self.hostname, self.pace)
        with open(self.board.image_path, "wb") as card:
            card.write(make_image(self.os_name, self.os_version))
        self.children = {
            "power": VirtualPower(target=self.board),
            "serial": PySerial(url=self.board.tty_path),
            "storage": VirtualStorageMux(path=self.board.image_path, connected_to="dut"),
            "network": TcpNetwork("127.0.0.1", self.board.http.port),
            "button": VirtualDigitalOutput(line=self.board.button),
            "led": VirtualDigitalInput(line=self.board.led),
            "can": Can(channel=self.board.can_channel, interface="virtual"),
        }
        for name, text in DESCRIPTIONS.items():
            self.children[name].description = text
        self.description = self.description or f"Virtual board {self.hostname}: {', '.join(self.children)}"

    @classmethod
    def create(cls, **config) -> VirtualBoard:
        """A board with the default image on its card, connected to the board, powered off."""
        return cls(**config)

    def _boot_medium(self) -> str | None:
        storage = self.children["storage"]
        return storage.path if storage.connected_to == "dut" else None

    @export
    def flash(self, image: dict) -> None:
        """Write an image (a resource) to the card and boot it: storage to host, write, storage to DUT, power cycle."""
        run_steps("flash", flash_steps(self, image))

    @export
    def boot_to_shell(self, timeout: float = 60.0) -> None:
        """Power on if needed, wait for the login prompt, log in as root: a shell prompt within ``timeout`` s."""
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        deadline = time.monotonic() + timeout
        serial = self.children["serial"]
        with watch_console(serial) as console:
            reach_shell(
                serial,
                self._power_up,
                lambda step: self._prompt_step(console, step, deadline),
                f"nothing expected within {timeout} s",
            )

    def _prompt_step(self, console: ConsoleSpawn, step: str, deadline: float) -> str:
        """React to the next prompt; returns the step now in progress (``"shell"``: done).

        Serial lines lose bytes: when a booted board shows no prompt for a while, Enter makes
        it print a fresh one (as labgrid's shell driver does).
        """
        left = deadline - time.monotonic()
        if left <= 0:
            raise pexpect.TIMEOUT("deadline")
        if self.cancelled():  # checked every PROMPT_NUDGE seconds at most
            raise Cancelled("boot_to_shell was cancelled: its caller went away")
        seen = console.expect(
            [LOGIN_PROMPT, SHELL_PROMPT, NO_IMAGE, pexpect.TIMEOUT], timeout=min(left, PROMPT_NUDGE)
        )
        if seen == 0:
            self.children["serial"].write(f"{USER}\n".encode())
            return "log in"
        if seen == 1:
            return "shell"
        if seen == 2:
            raise RuntimeError("the bootloader found no bootable image on the card")
        if self.board.state is State.IDLE:
            self.children["serial"].write(b"\n")
        return step

    def _power_up(self) -> None:
        """Boot from cold unless the board is booting or booted (then ask for a fresh prompt)."""
        power, state = self.children["power"], self.board.state
        if state is State.IDLE:
            self.children["serial"].write(b"\n")  # the board reprints its prompt on Enter
        elif state not in BOOTING:
            power.off()
            power.on()

    def teardown(self) -> None:
        super().teardown()  # the serial driver lets go of the pty before the board dismantles it
        self.board.stop()


DESCRIPTIONS = {
    "power": "Power supply of the board; readings follow the boot",
    "serial": "Serial console (the board's pty through pyserial)",
    "storage": "SD card mux: host/dut/off, write/read the boot image",
    "network": "The board's HTTP status service (answers only while booted)",
    "button": "User button (the board's `button` command shows it)",
    "led": "Status LED (the board's `led on|off` sets it)",
    "can": "The board's CAN bus: 10 Hz Status frames while booted, VersionRequest/Response (virtual-board.dbc)",
}
