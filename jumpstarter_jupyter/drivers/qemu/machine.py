"""One QEMU guest: its process, its QMP channel and its console behind a stable pty.

QEMU connects, as a client, to two unix sockets this module listens on: QMP and the guest's
UART. Both are accepted before QEMU is told to ``cont``inue from ``-S``, so no boot output is
lost. The UART is relayed to a pty made once per machine; ``console`` in the work folder is a
symlink to it, so the serial driver keeps one open port across power cycles (upstream's QEMU
driver also hands out a pty). The relay always drains the UART: unread console output would
stall the guest.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import tty
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from jumpstarter_jupyter.drivers.power.common import PowerReading
from jumpstarter_jupyter.drivers.qemu.images import CONSOLES, INSTALL_HINT, GuestImages

logger = logging.getLogger(__name__)

START_TIMEOUT = 20.0  # seconds for QEMU to connect its QMP and console sockets
STOP_STEPS = (("QMP quit", 5.0), ("SIGTERM", 5.0), ("SIGKILL", 5.0))  # each with its deadline in seconds
GUEST_HTTP_PORT = 80
# modelled readings: a 5 V board drawing IDLE_CURRENT, rising to BUSY_CURRENT at 100 % of one CPU
SUPPLY_VOLTAGE = 5.0
IDLE_CURRENT = 0.15
BUSY_CURRENT = 0.95
SAMPLE_WINDOW = 0.25  # seconds: readings closer together than this repeat the last one
# the last line of a panic when the kernel halts (panic=0) instead of rebooting: a guest whose kernel
# has no pvpanic (arm64's cloud kernel) is powered off when its console shows it (so is one that
# prints this text on purpose, e.g. by showing an old console log)
PANIC_END = b"---[ end Kernel panic"
MACHINES = {"x86_64": ["-M", "pc"], "aarch64": ["-M", "virt"]}
DEFAULT_CPUS = {"x86_64": "", "aarch64": "cortex-a57"}
# the standard VGA: the cloud kernel's VGA text console (720x400) and the PC's PS/2 keyboard work
# with it; arm64's cloud kernel has no display driver, so aarch64 boards have no screen
SCREENS = {"x86_64": ["-device", "VGA"]}


@dataclass(frozen=True)
class MachineSpec:
    """What to run: QEMU's architecture name, CPU model ('' for the default), CPUs, memory, accelerator."""

    arch: str = "x86_64"
    cpu: str = ""
    smp: int = 1
    mem: str = "256M"
    accel: str = "tcg"  # /dev/kvm may exist where KVM guests print nothing: never guess

    def binary(self) -> str:
        return f"qemu-system-{self.arch}"


class QemuMachine:
    """A guest switched on and off like a board on a relay; implements the power target protocol.

    ``boot_medium()`` is asked at each power on for the disk image to attach (None: the
    initramfs's own root); ``on_event(text)`` reports what happened outside the caller's
    control (QEMU exited, was killed); ``start_cpu()``, if given, is called at each power on
    with the CPU held, once QEMU's gdbstub listens at ``gdb_path``: True when it took charge
    of the CPU (the debugger attached), False to have the machine continue it.
    """

    def __init__(
        self,
        spec: MachineSpec,
        images: GuestImages,
        workdir: Path,
        boot_medium: Callable[[], str | None],
        on_event: Callable[[str], None],
        start_cpu: Callable[[], bool] | None = None,
    ):
        self.spec, self.images, self.workdir = spec, images, workdir
        self._boot_medium, self._on_event, self._start_cpu = boot_medium, on_event, start_cpu
        self.gdb_path = workdir / "gdb.sock"  # QEMU's gdbstub: private to the exporter, new at each power on
        self.tty_path = workdir / "console"
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # bytes pass as they are; the slave stays open so the master never sees EIO
        self.tty_path.symlink_to(os.ttyname(self._slave))
        self._wake_read, self._wake_write = os.pipe()
        self._lock = threading.Lock()  # one power transition at a time
        self._process: subprocess.Popen | None = None
        self._qmp: Qmp | None = None
        self._uart: socket.socket | None = None
        self._asked_to_stop: subprocess.Popen | None = None  # an exit we caused is not news
        self._panicked: subprocess.Popen | None = None  # the process whose console showed PANIC_END
        self.http_port: int | None = None
        self._sample = (time.monotonic(), 0.0, IDLE_CURRENT)
        self._keyboard = threading.Thread(target=self._forward_input, name="qemu console input", daemon=True)
        self._keyboard.start()

    # the power target protocol
    @property
    def powered(self) -> bool:
        """True while the QEMU process runs (guest ``reboot`` is a reset: it stays on)."""
        process = self._process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        """The running QEMU process's id (None while off)."""
        return self._process.pid if self.powered else None

    def set_power(self, on: bool) -> None:
        """Start the guest (paused until its sockets are connected) or stop the process."""
        with self._lock:
            if on and not self.powered:
                self._start()
            elif not on and self._process is not None:
                self._stop()

    def reading(self) -> PowerReading:
        """Modelled: 5 V and a current that follows the QEMU process's CPU use (0 A while off)."""
        if not self.powered:
            return PowerReading(0.0, 0.0)
        now, cpu = time.monotonic(), _cpu_seconds(self._process.pid)
        then, cpu_then, current = self._sample
        if now - then >= SAMPLE_WINDOW:
            busy = min(max((cpu - cpu_then) / (now - then), 0.0), 1.0)
            current = IDLE_CURRENT + (BUSY_CURRENT - IDLE_CURRENT) * busy
            self._sample = (now, cpu, current)
        return PowerReading(SUPPLY_VOLTAGE, current)

    # power on
    def _start(self) -> None:
        self._reap()
        qmp_listener, uart_listener = self._listen("qmp.sock"), self._listen("uart.sock")
        try:
            self._process = self._spawn()
            self._connect(qmp_listener, uart_listener)
        finally:
            qmp_listener.close()
            uart_listener.close()

    def _spawn(self) -> subprocess.Popen:
        if not shutil.which(self.spec.binary()):
            raise FileNotFoundError(f"{self.spec.binary()} is not installed: run {INSTALL_HINT}")
        with open(self.workdir / "qemu.log", "wb") as log:
            return _SPAWNER.popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _connect(self, qmp_listener: socket.socket, uart_listener: socket.socket) -> None:
        """Accept QEMU's QMP and console, start the relay and the exit watcher, then ``cont``."""
        try:
            self._qmp = Qmp(self._accept(qmp_listener, "QMP"))
            self._uart = self._accept(uart_listener, "console")
            self.http_port = self._qmp.forwarded_port(GUEST_HTTP_PORT)
            self._sample = (time.monotonic(), _cpu_seconds(self._process.pid), IDLE_CURRENT)
            threading.Thread(
                target=self._forward_output,
                args=(self._uart, self._process, self._qmp),
                name="qemu console output",
                daemon=True,
            ).start()
            threading.Thread(
                target=self._watch, args=(self._process, self._qmp), name="qemu process", daemon=True
            ).start()
            # the gdbstub listens once QMP answers (QEMU serves QMP after its whole start-up)
            if self._start_cpu is None or not self._start_cpu():
                self._qmp.command("cont")
        except (ConnectionError, ValueError):  # QEMU closed a socket: it refused the configuration
            self._stop()
            raise RuntimeError(
                f"QEMU stopped while starting ({self._process.returncode}): {self.log_tail()}"
            ) from None
        except BaseException:
            self._stop()
            raise

    def _argv(self) -> list[str]:
        spec, images = self.spec, self.images
        cpu = spec.cpu or DEFAULT_CPUS[spec.arch]
        append = f"console={CONSOLES[spec.arch]},115200 panic=0"  # a panicked kernel halts: see PANIC_END
        if spec.arch in SCREENS:  # the kernel prints on the screen too; the UART stays /dev/console (last)
            append = f"console=tty0 {append}"
        argv = [
            spec.binary(),
            *MACHINES[spec.arch],
            *(["-cpu", cpu] if cpu else []),
            "-accel",
            spec.accel,
            "-smp",
            str(spec.smp),
            "-m",
            spec.mem,
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-S",
            "-kernel",
            str(images.kernel),
            "-initrd",
            str(images.initramfs),
            "-qmp",
            f"unix:{self.workdir / 'qmp.sock'}",
            "-chardev",
            f"socket,id=uart,path={self.workdir / 'uart.sock'}",
            "-serial",
            "chardev:uart",
            "-gdb",
            f"unix:{self.gdb_path},server=on,wait=off",
            # port 0: the kernel picks a free host port, read back over QMP
            "-netdev",
            f"user,id=net,restrict=on,hostfwd=tcp:127.0.0.1:0-:{GUEST_HTTP_PORT}",
            "-device",
            "virtio-net-pci,netdev=net",
            # a guest panic reaches QEMU through pvpanic (where the kernel has it) and powers
            # the board off; guest reboot stays a reset
            "-device",
            "pvpanic-pci",
            "-action",
            "panic=shutdown",
        ]
        argv += SCREENS.get(spec.arch, [])
        disk = self._boot_medium()
        if disk:
            argv += ["-drive", f"file={disk},if=virtio,format=raw"]
            append += " root=/dev/vda"
        return argv + ["-append", append]

    def _listen(self, name: str) -> socket.socket:
        path = self.workdir / name
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.listen(1)
        return listener

    def _accept(self, listener: socket.socket, what: str) -> socket.socket:
        """Wait for QEMU to connect; if it exits first, raise with what it printed."""
        deadline = time.monotonic() + START_TIMEOUT
        while not select.select([listener], [], [], 0.1)[0]:  # slices: QEMU's exit is noticed too
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"QEMU exited with {self._process.returncode} before connecting its {what}: "
                    f"{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"QEMU did not connect its {what} within {START_TIMEOUT} s: {self.log_tail()}"
                )
        return listener.accept()[0]

    def qmp(self, command: str, **arguments) -> object:
        """Run a QMP command on the running guest (the screen's screendump and keys)."""
        channel = self._qmp
        if channel is None or not self.powered:
            raise RuntimeError("the board is powered off: its screen is dark")
        try:
            return channel.command(command, **arguments)
        except OSError:
            raise RuntimeError("the board powered off meanwhile: its screen is dark") from None

    def log_tail(self, size: int = 400) -> str:
        """The end of what QEMU printed (its stderr)."""
        try:
            return (self.workdir / "qemu.log").read_text(errors="replace")[-size:].strip()
        except FileNotFoundError:
            return ""

    # power off
    def _stop(self) -> None:
        """QMP quit, then SIGTERM, then SIGKILL, each with a deadline; then release the sockets."""
        process = self._asked_to_stop = self._process
        try:
            for step, deadline in STOP_STEPS:
                if process.poll() is not None:
                    break
                self._stop_step(step, process)
                try:
                    process.wait(deadline)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            self._reap()

    def _stop_step(self, step: str, process: subprocess.Popen) -> None:
        if step == "QMP quit" and self._qmp is not None:
            _quit(self._qmp)
        elif step == "SIGTERM":
            process.terminate()
        elif step == "SIGKILL":
            process.kill()

    def _reap(self) -> None:
        """Forget a finished process and close its channels."""
        for channel in (self._qmp, self._uart):
            if channel is not None:
                channel.close()
        self._qmp = self._uart = None
        self.http_port = None

    def _watch(self, process: subprocess.Popen, qmp: Qmp) -> None:
        """Report an exit nobody asked for (guest poweroff or panic, QEMU killed from outside)."""
        code = process.wait()
        if self._asked_to_stop is not process:
            qmp.read_to_end()  # the SHUTDOWN event QEMU sent before exiting says why
            reason = "guest-panic" if self._panicked is process else qmp.shutdown_reason
            self._on_event(f"QEMU exited ({_exit_cause(code, reason)}): the board is off")

    # the console relay
    def _forward_output(self, uart: socket.socket, process: subprocess.Popen, qmp: Qmp) -> None:
        """Guest UART -> pty, for the whole life of one QEMU process; a halted panic powers it off."""
        recent = b""  # the end of the output so far: PANIC_END may arrive split over two reads
        while True:
            try:
                data = uart.recv(65536)
            except OSError:
                return
            if not data:
                return
            view = memoryview(data)
            while view:
                view = view[os.write(self._master, view) :]
            recent = recent[-len(PANIC_END) :] + data
            if PANIC_END in recent and self._panicked is not process:
                self._panicked = process
                _quit(qmp)

    def _forward_input(self) -> None:
        """pty -> guest UART; typed while off, the bytes are dropped (as on an unpowered board)."""
        while True:
            ready = select.select([self._master, self._wake_read], [], [])[0]
            if self._wake_read in ready:
                return
            data = os.read(self._master, 65536)
            uart = self._uart
            if uart is not None:
                try:
                    uart.sendall(data)
                except OSError:
                    pass  # QEMU is gone: the watcher reports it

    def close(self) -> None:
        """Power off and release the pty (the exporter is stopping)."""
        self.set_power(False)
        os.write(self._wake_write, b"x")
        self._keyboard.join(5)
        for fd in (self._master, self._slave, self._wake_read, self._wake_write):
            os.close(fd)
        self.tty_path.unlink(missing_ok=True)


class _Spawner:
    """Starts QEMU processes that die with the exporter, even a SIGKILLed one (no teardown runs then).

    ``setpriv --pdeathsig KILL`` has the kernel kill QEMU when its parent dies, but "parent" is
    the *thread* that forked it, and driver methods run on a pool whose threads may come and go.
    So every QEMU is forked by this one thread, which lives as long as the exporter. Should the
    exporter die between the fork and the prctl, QEMU finds nobody listening on its QMP socket
    and exits by itself.
    """

    def __init__(self):
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, argv: list[str], **options) -> subprocess.Popen:
        """``subprocess.Popen(argv, **options)``, forked by the spawner thread."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="qemu spawner", daemon=True)
                self._thread.start()
        done: Future = Future()
        self._requests.put((argv, options, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            argv, options, done = self._requests.get()
            setpriv = shutil.which("setpriv")  # util-linux
            if not setpriv:
                logger.warning("setpriv (util-linux) is not installed: QEMU would outlive a killed exporter")
            prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
            try:
                done.set_result(subprocess.Popen(prefix + argv, **options))
            except BaseException as exc:
                done.set_exception(exc)


_SPAWNER = _Spawner()


class Qmp:
    """A QMP connection: commands in order; of the asynchronous events, the shutdown's reason is kept."""

    def __init__(self, connection: socket.socket):
        self._socket = connection
        self._file = connection.makefile("rwb", buffering=0)
        self._lock = threading.Lock()
        self.shutdown_reason: str | None = None  # QEMU's SHUTDOWN event: guest-shutdown, guest-panic, ...
        json.loads(self._file.readline())  # the greeting
        self.command("qmp_capabilities")

    def command(self, name: str, **arguments) -> object:
        """Run one command; its ``return`` value. An ``error`` raises RuntimeError."""
        request = {"execute": name, **({"arguments": arguments} if arguments else {})}
        with self._lock:
            self._file.write(json.dumps(request).encode() + b"\n")
            while True:
                line = self._file.readline()
                if not line:
                    raise ConnectionResetError(f"QMP {name}: QEMU closed the connection")
                reply = json.loads(line)
                if "error" in reply:
                    raise RuntimeError(f"QMP {name}: {reply['error'].get('desc', reply['error'])}")
                if "return" in reply:
                    return reply["return"]
                self._note(reply)

    def read_to_end(self) -> None:
        """Read the events QEMU sent before closing the connection (call once QEMU has exited)."""
        with self._lock:
            try:
                while line := self._file.readline():
                    self._note(json.loads(line))
            except (OSError, ValueError):
                pass  # closed meanwhile by the next power on: the reason stays unknown

    def _note(self, event: dict) -> None:
        if event.get("event") == "SHUTDOWN":
            self.shutdown_reason = event.get("data", {}).get("reason")

    def forwarded_port(self, guest_port: int) -> int:
        """The host port of the user-mode network's forward to ``guest_port``."""
        usernet = self.command("human-monitor-command", **{"command-line": "info usernet"})
        found = re.search(rf"HOST_FORWARD\]\s+\d+\s+\S+\s+(\d+)\s+\S+\s+{guest_port}\b", usernet)
        if not found:
            raise RuntimeError(f"QEMU reports no host forward to guest port {guest_port}: {usernet!r}")
        return int(found.group(1))

    def close(self) -> None:
        self._socket.close()


def _quit(qmp: Qmp) -> None:
    """Ask QEMU to exit now (like pulling the board's power)."""
    try:
        qmp.command("quit")
    except OSError:
        pass  # it is exiting already


def _exit_cause(code: int, shutdown_reason: str | None) -> str:
    """Why QEMU exited, in words, from its exit status and its SHUTDOWN event's reason."""
    if shutdown_reason == "guest-panic":
        return "the guest kernel panicked"
    if code == 0:
        return "the guest powered off"
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, in seconds (0 once it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
