"""Upstream's `j dut serial pipe` (inside `jmp shell`) on our QEMU board: it shows the boot and takes input.

A read-only pipe (``--no-input``) runs as its own process while this script drives the board
with upstream's Python client. Enter is pressed until the guest's login prompt comes through
the pipe (then it is surely connected); a power cycle follows, whose boot must pass through it.
After a login through ``serial.pexpect()``, a second pipe with piped input types a command,
whose output the first pipe shows. Ctrl+C (SIGINT) ends the first pipe, as its help
says; upstream's `j` then exits with status 2. (Upstream's piped input reaches the board in
1 KiB reads or at the end of input, so a pipe cannot type a login dialogue line by line.)
Prints ``boot:``, ``shell:`` and ``exit:`` lines for the test.
"""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from jumpstarter.utils.env import env

DEADLINE = 60.0  # seconds for each thing awaited
NUDGE = 3.0  # seconds without a login prompt through the pipe before pressing Enter again
J = str(Path(sys.executable).with_name("j"))


class Pipe:
    """A running read-only `j dut serial pipe`, its output collected as it arrives."""

    def __init__(self):
        # SIGINT's default disposition: it is stopped with Ctrl+C's signal, and a run started in
        # the background of a non-interactive shell would hand it down ignored
        self.process = subprocess.Popen(
            [J, "dut", "serial", "pipe", "--no-input"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.output = b""
        self.arrived = threading.Condition()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        while data := self.process.stdout.read1(65536):
            with self.arrived:
                self.output += data
                self.arrived.notify_all()

    def await_text(self, text: str, start: int, timeout: float = DEADLINE) -> int | None:
        """The offset just past ``text`` in the output from ``start`` on; None if not seen in time."""
        wanted, deadline = text.encode(), time.monotonic() + timeout
        with self.arrived:
            while (found := self.output.find(wanted, start)) < 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)
            return found + len(wanted)

    def expect(self, text: str, start: int) -> int:
        end = self.await_text(text, start)
        if end is None:
            sys.exit(
                f"{text!r} did not come through the pipe within {DEADLINE} s; it showed last: "
                f"{self.output[-300:]!r}"
            )
        return end

    def shown(self, start: int, end: int) -> str:
        return repr(self.output[start:end].decode(errors="replace"))


with env() as client:
    pipe = Pipe()
    with client.dut.serial.pexpect() as console:
        client.dut.power.on()
        deadline = time.monotonic() + DEADLINE
        while pipe.await_text("login: ", 0, NUDGE) is None:  # a getty reprints its prompt on Enter
            if time.monotonic() > deadline:
                sys.exit(f"no login prompt through the pipe within {DEADLINE} s: {pipe.output[-300:]!r}")
            console.send("\r")
        client.dut.power.off()
        start = len(pipe.output)
        client.dut.power.on()
        boot_end = pipe.expect("login: ", pipe.expect("Linux version", start))
        print("boot:", pipe.shown(start, boot_end))
        console.expect("login: ", timeout=DEADLINE)
        console.send("root\r")
        console.expect("Password: ", timeout=DEADLINE)
        console.send("root\r")
        console.expect("# ", timeout=DEADLINE)
    # piped stdin: upstream sends it, then half-closes, which ends the stream on our exporter
    typed = subprocess.run(
        [J, "dut", "serial", "pipe"], input=b"echo piped-$((6 * 7))\r", capture_output=True, timeout=DEADLINE
    )
    if typed.returncode != 0:
        sys.exit(f"`j dut serial pipe` with piped input failed ({typed.returncode}): {typed.stderr.decode()}")
    print("shell:", pipe.shown(boot_end, pipe.expect("piped-42", boot_end)))
    pipe.process.send_signal(signal.SIGINT)  # Ctrl+C
    code, said = pipe.process.wait(DEADLINE), pipe.process.stderr.read().decode(errors="replace").split("\n")
    print("exit:", code, " | ".join(line.strip() for line in said if line.strip()))
