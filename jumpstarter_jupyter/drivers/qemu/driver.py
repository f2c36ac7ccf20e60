"""``QemuBoard``: a real Linux guest under QEMU, driven through the same drivers as lab hardware::

    dut                 QemuBoard (flash, boot_to_shell, run)
    ├─ power            VirtualPower on the QEMU process: on/off/cycle, modelled readings
    ├─ serial           PySerial on the guest's UART (a pty behind a stable symlink)
    ├─ storage          QemuStorageMux: the guest's SD card, a disk image (host only while off)
    ├─ network          QemuNetwork: the guest's HTTP service via user-mode hostfwd
    ├─ debugger         GdbServer on QEMU's gdbstub (a private unix socket, new at each power on)
    └─ screen           QemuScreen: the VGA screen and keyboard over QMP (x86_64 only)

The kernel, initramfs and root images come from ``jumpstarter-jupyter qemu-images``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from jumpstarter_jupyter.driver import Cancelled, SocketStream, export, exportstream, runtime
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.composite.steps import (
    console_tail,
    flash_steps,
    reach_shell,
    run_steps,
    watch_console,
)
from jumpstarter_jupyter.drivers.debugger.driver import GdbServer
from jumpstarter_jupyter.drivers.network.driver import TcpNetwork
from jumpstarter_jupyter.drivers.power.driver import VirtualPower
from jumpstarter_jupyter.drivers.qemu.images import images_for
from jumpstarter_jupyter.drivers.qemu.machine import SCREENS, MachineSpec, QemuMachine
from jumpstarter_jupyter.drivers.qemu.screen import QemuScreen
from jumpstarter_jupyter.drivers.serial.common import ConsoleSpawn
from jumpstarter_jupyter.drivers.serial.driver import PySerial
from jumpstarter_jupyter.drivers.storage.driver import VirtualStorageMux

LOGIN_PROMPT = r"login: "
PASSWORD_PROMPT = r"Password: "
SHELL_PROMPT = r"dut:[^\r\n]*# "
PROMPT_NUDGE = 5.0  # seconds without a prompt before pressing Enter (a booted guest reprints it)
CANCEL_CHECK = 0.5  # seconds between checks that run()'s caller is still there
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # busybox asks for the cursor position after each prompt


@dataclass
class QemuStorageMux(VirtualStorageMux):
    """The guest's SD card: a raw disk image, on the host only while the guest is off."""

    machine: QemuMachine | None = runtime(None)

    def _switch(self, position: str) -> None:
        if position != "dut" and self.machine.powered:
            raise RuntimeError(
                f"cannot switch the storage to {position!r} while the board is powered on: "
                "power off first (the running guest uses the card)"
            )
        super()._switch(position)


@dataclass
class QemuNetwork(TcpNetwork):
    """The guest's port 80 through QEMU's user-mode network; the host port changes at each power on."""

    host: str = "127.0.0.1"
    port: int = 0
    machine: QemuMachine | None = runtime(None)

    def __post_init__(self) -> None:
        pass  # no port until the guest runs

    @exportstream
    async def connect(self) -> SocketStream:
        """Open a TCP connection to the guest's HTTP service."""
        self.port = self._current_port()
        return await TcpNetwork.connect(self)

    @export
    def address(self) -> str:
        """``tcp://127.0.0.1:PORT`` of the running guest's HTTP service."""
        self.port = self._current_port()
        return super().address()

    def _current_port(self) -> int:
        port = self.machine.http_port
        if port is None:
            raise ConnectionRefusedError("the board is powered off: its network is down")
        return port


@dataclass
class QemuBoard(Composite):
    """A QEMU guest with power, serial console, storage and network.

    Config (upstream ``Qemu`` names where the meaning is the same): ``arch`` (``x86_64`` or
    ``aarch64``), ``cpu`` (QEMU's CPU model, '' for the machine's default), ``smp``, ``mem``
    (e.g. ``"256M"``), ``username``/``password`` for ``boot_to_shell`` and ``run``; ours:
    ``accel`` (``tcg``; ``kvm`` only where KVM guests really run), ``image`` (``A`` or ``B``,
    the root image on the card at start), ``images`` (artefact cache, default the user's),
    ``gdb_wait`` (hold the CPU at power on until ``dut.debugger.resume()``).
    """

    client = "jumpstarter_jupyter.drivers.qemu.client.QemuBoardClient"

    arch: str = "x86_64"
    cpu: str = ""
    smp: int = 1
    mem: str = "256M"
    accel: str = "tcg"
    username: str = "root"
    password: str = "root"
    image: str = "A"
    images: str = ""
    gdb_wait: bool = False
    machine: QemuMachine = field(init=False, repr=False)
    shell_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.image not in ("A", "B"):
            raise ValueError(f"image must be 'A' or 'B', got {self.image!r}")
        artefacts = images_for(self.arch, Path(self.images) if self.images else None)
        self._workdir = Path(tempfile.mkdtemp(prefix="jmp-qemu-"))
        card = self._workdir / "sdcard.img"
        shutil.copyfile(artefacts.disk(self.image), card)
        self.machine = QemuMachine(
            MachineSpec(self.arch, self.cpu, self.smp, self.mem, self.accel),
            artefacts,
            self._workdir,
            self._boot_medium,
            self._machine_event,
            self._start_cpu,
        )
        self.children = {
            "power": VirtualPower(target=self.machine),
            "serial": PySerial(url=str(self.machine.tty_path)),
            "storage": QemuStorageMux(path=str(card), connected_to="host", machine=self.machine),
            "network": QemuNetwork(machine=self.machine),
            "debugger": GdbServer(address=f"unix:{self.machine.gdb_path}"),
        }
        if self.arch in SCREENS:
            self.children["screen"] = QemuScreen(machine=self.machine)
        for name, text in DESCRIPTIONS.items():
            if name in self.children:
                self.children[name].description = text
        self.description = self.description or f"QEMU {self.arch} board: {', '.join(self.children)}"

    def _boot_medium(self) -> str | None:
        """At power on the card goes to the guest (unless it is switched off)."""
        storage = self.children["storage"]
        if storage.connected_to == "off":
            return None
        storage.dut()
        return storage.path

    def _start_cpu(self) -> bool:
        """At power on, with the CPU held: the debugger attaches to the new gdbstub and lets it run
        (or holds it, with ``gdb_wait``). False (the machine continues it) if it cannot attach."""
        debugger = self.children["debugger"]
        held = " (held at power on: gdb_wait; resume() starts the CPU)" if self.gdb_wait else ""
        try:
            debugger.attach(f"QEMU powered on: attached to its new gdbstub{held}")
        except ConnectionError as exc:
            self.logger.warning("the debugger cannot attach, the CPU runs without it: %s", exc)
            return False
        if not self.gdb_wait:
            debugger.resume()
        return True

    def _machine_event(self, text: str) -> None:
        self.logger.warning("%s", text)
        self.children["serial"].console.event(text)

    @export
    def flash(self, image: dict) -> None:
        """Power off, write an ext4 image (a resource, raw or compressed) to the card and boot it."""
        # the card reaches the host only while the guest is off
        run_steps("flash", [("power off", self.children["power"].off), *flash_steps(self, image)])

    @export
    def boot_to_shell(self, timeout: float = 60.0) -> None:
        """Power on if needed and log in: a shell prompt within ``timeout`` seconds."""
        deadline = _deadline(timeout)
        with self._shell_session(deadline) as console:
            self._reach_shell(console, deadline)

    @export
    def run(self, command: str, timeout: float = 60.0) -> tuple[int, str]:
        """Run a shell command (booting and logging in if needed): its exit code and output.

        It runs in the login shell, so ``cd`` and variables persist; ``exit`` would end the
        session before the exit code is printed (use ``sh -c '…; exit 3'``).
        """
        deadline = _deadline(timeout)
        token = uuid.uuid4().hex[:12]
        with self._shell_session(deadline) as console:
            self._reach_shell(console, deadline)
            # the echoed line holds the token but not "@@token:", so only the real end matches
            console.send(f"{command}; printf '@@%s:%s@@\\n' {token} \"$?\"\r")
            self._await_end(console, rf"@@{token}:(\d+)@@", deadline, command)
            exit_code = int(console.match.group(1))
            # after the last echo of the line: a shell that was busy echoes typed-ahead input twice
            output = ANSI.sub("", console.before).rsplit(token, 1)[-1].split("\n", 1)[-1]
        return exit_code, output.replace("\r\n", "\n").strip("\n")

    @contextmanager
    def _shell_session(self, deadline: float) -> Iterator[ConsoleSpawn]:
        """The console for one ``run``/``boot_to_shell`` at a time: two would type into each other."""
        if not self.shell_lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise TimeoutError("another run or boot_to_shell kept the shell until the deadline")
        try:
            with watch_console(self.children["serial"]) as console:
                yield console
        finally:
            self.shell_lock.release()

    def _await_end(self, console: ConsoleSpawn, end: str, deadline: float, command: str) -> None:
        """Wait for the command's end marker; a cancelled caller interrupts the command (Ctrl-C)."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"run {command!r}: no end before the deadline; the console showed last: "
                    f"{console_tail(self.children['serial'])!r}"
                )
            if self.cancelled():
                console.send("\x03")  # the guest's shell gets its prompt back for the next caller
                raise Cancelled(f"run {command!r} was cancelled: its caller went away")
            if console.expect([end, pexpect.TIMEOUT], timeout=min(left, CANCEL_CHECK)) == 0:
                return

    def _reach_shell(self, console: ConsoleSpawn, deadline: float) -> None:
        """Power on or ask for a fresh prompt, then answer login prompts until the shell's appears."""

        def power_up() -> None:
            if self.machine.powered:
                console.send("\r")
            else:
                self.children["power"].on()

        reach_shell(
            self.children["serial"],
            power_up,
            lambda step: self._prompt_step(console, step, deadline),
            "no prompt before the deadline",
        )

    def _prompt_step(self, console: ConsoleSpawn, step: str, deadline: float) -> str:
        """React to the next prompt; returns the step now in progress (``"shell"``: done)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise pexpect.TIMEOUT("deadline")
        if self.cancelled():
            raise Cancelled("boot_to_shell was cancelled: its caller went away")
        if not self.machine.powered:
            raise RuntimeError(f"the board powered off: {self.machine.log_tail() or 'QEMU exited'}")
        seen = console.expect(
            [LOGIN_PROMPT, PASSWORD_PROMPT, SHELL_PROMPT, pexpect.TIMEOUT], timeout=min(left, PROMPT_NUDGE)
        )
        if seen == 0:
            console.send(f"{self.username}\r")
            return "log in"
        if seen == 1:
            console.send(f"{self.password}\r")
            return "password"
        if seen == 2 and step in ("password", "log in"):
            console.send("stty cols 1000\r")  # long commands must not wrap (the echo would be mangled)
            return "terminal width"
        if seen == 2:
            return "shell"
        console.send("\r")
        return step

    def teardown(self) -> None:
        """Power off QEMU, release the console and remove the board's card and sockets."""
        super().teardown()
        self.machine.close()
        shutil.rmtree(self._workdir, ignore_errors=True)


def _deadline(timeout: float) -> float:
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    return time.monotonic() + timeout


DESCRIPTIONS = {
    "power": "The QEMU process: on (boots), off (quits), readings follow its CPU use (modelled)",
    "serial": "The guest's UART through a pty",
    "storage": "SD card mux over the guest's disk image: host only while powered off",
    "network": "The guest's HTTP service (port 80) through QEMU user-mode networking",
    "debugger": "QEMU's gdbstub: halt, step, registers, memory, breakpoints",
    "screen": "The guest's VGA text screen (720x400) and PS/2 keyboard (x86_64 only)",
}
