"""Python API of debuggers: ``dut.debugger`` halts, steps, reads registers and memory, sets breakpoints.

Addresses are ints, hex text or symbols (``"linux_banner"``, ``"ksys_sync+0x4"``) once
``symbols(source)`` has loaded an ELF file, a System.map or ``/proc/kallsyms`` text; symbols
live in this client (the exporter sees addresses, and the labels you gave them).
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from typing import Any

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.drivers.debugger import symbols as symbol_tables
from jumpstarter_jupyter.drivers.network.forward import Forwarder

READ_CHUNK = 1 << 20  # bytes per read_memory call (its base64 stays far below gRPC's 4 MB message limit)


class DebuggerClient(DriverClient):
    """``dut.debugger``: a GDB remote-protocol target (QEMU's gdbstub, a probe's GDB server).

    >>> dut.debugger.symbols(dut.run("grep -w linux_banner /proc/kallsyms")[1])   # doctest: +SKIP
    >>> dut.debugger.halt()["state"]                                            # doctest: +SKIP
    'halted'
    >>> dut.debugger.read_memory("linux_banner", 14)                           # doctest: +SKIP
    b'Linux version '
    """

    widget = "jumpstarter_jupyter.drivers.debugger.widget.DebuggerWidget"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.symbol_table: dict[str, int] = {}
        self._forwarders: set[Forwarder] = set()

    # symbols
    def symbols(self, source: str | os.PathLike) -> int:
        """Load symbols from an ELF file, a System.map file, or kallsyms text; the number now known."""
        self.symbol_table.update(symbol_tables.load(source))
        return len(self.symbol_table)

    def address(self, where: int | str) -> int:
        """``where`` (int, ``"0x…"``, ``"symbol"``, ``"symbol+0x10"``) as an address."""
        return symbol_tables.resolve(self.symbol_table, where)

    def symbolize(self, address: int) -> str:
        """``symbol+0xOFF`` of the nearest loaded symbol at or below ``address`` ('' if none is near)."""
        return symbol_tables.name_of(self.symbol_table, address)

    # state
    def state(self) -> dict:
        """``state`` (detached, running, halted), ``reason``, ``pc``/``sp`` (ints), ``notice``, ``gdb``."""
        return _ints(self.call("state"))

    def snapshot(self) -> dict:
        """What the exporter read at the last stop (registers, code, memory, breakpoints): every viewer's."""
        return self.call("snapshot")

    def watch(self) -> Iterator[dict]:
        """The snapshot now and after each change (stops, resumes, breakpoints)."""
        return self.streamingcall("watch")

    def wait_for_stop(self, timeout: float = 30.0) -> dict:
        """Wait until the target halts (a breakpoint, a watchpoint, a step); its state."""
        return _ints(self.call("wait_for_stop", float(timeout)))

    # control
    def halt(self, timeout: float = 10.0) -> dict:
        """Stop the target; its state (``reason``: why it stopped)."""
        return _ints(self.call("halt", float(timeout)))

    def resume(self) -> dict:
        """Let the target run (over a breakpoint at the PC)."""
        return _ints(self.call("resume"))

    def step(self, n: int = 1) -> dict:
        """Execute ``n`` instructions; the state after them (``pc``)."""
        return _ints(self.call("step", int(n)))

    def registers(self) -> dict[str, int | None]:
        """Every register of the target's own description, read now: name -> value (None: unavailable)."""
        return {
            name: None if value is None else int(value, 16) for name, value in self.call("registers").items()
        }

    def read_memory(self, address: int | str, size: int) -> bytes:
        """``size`` bytes at ``address`` (an int, hex text or a symbol) of the halted target."""
        start, out = self.address(address), bytearray()
        while len(out) < size:
            count = min(READ_CHUNK, size - len(out))
            out += base64.b64decode(self.call("read_memory", hex(start + len(out)), count))
        return bytes(out)

    def write_memory(self, address: int | str, data: bytes) -> None:
        """Write ``data`` at ``address`` (an int, hex text or a symbol)."""
        self.call("write_memory", hex(self.address(address)), base64.b64encode(bytes(data)).decode())

    def breakpoint(self, address: int | str, hardware: bool = False) -> dict:
        """Break at ``address`` (a symbol names it for every viewer); a running target keeps running."""
        return self.call("breakpoint", hex(self.address(address)), self._label(address), bool(hardware))

    def watchpoint(self, address: int | str, size: int, kind: str = "write") -> dict:
        """Stop when ``size`` bytes at ``address`` are written (``kind``: ``write``, ``read``, ``access``)."""
        return self.call("watchpoint", hex(self.address(address)), int(size), kind, self._label(address))

    def remove(self, address: int | str) -> list[str]:
        """Remove the breakpoints and watchpoints at ``address`` (or with that id); their ids."""
        if isinstance(address, str) and ":" in address:
            return self.call("remove", address)
        return self.call("remove", hex(self.address(address)))

    def view(self, address: int | str, size: int = 0) -> dict:
        """Show ``size`` bytes at ``address`` in the memory view (read at each stop, seen by every viewer)."""
        return self.call("view", hex(self.address(address)), int(size))

    def _label(self, address: int | str) -> str:
        return (
            address
            if isinstance(address, str)
            and not address.strip().startswith(("0x", "0X"))
            and not address.strip().isdigit()
            else ""
        )

    # disassembly
    def disassemble(self, snapshot: dict | None = None, count: int = 16) -> list[tuple[int, str, str, str]]:
        """Instructions at the PC of ``snapshot`` (default: the last stop): (address, bytes, text, symbol)."""
        from jumpstarter_jupyter.drivers.debugger.disassembly import disassemble

        snapshot = snapshot or self.snapshot()
        code = snapshot.get("code")
        if not code or not code.get("hex"):
            return []
        lines = disassemble(
            snapshot["architecture"], bytes.fromhex(code["hex"]), int(code["address"], 16), count
        )
        return [(address, raw, text, self.symbolize(address)) for address, raw, text in lines]

    # a local gdb
    @contextlib.contextmanager
    def forward(self, local_port: int = 0) -> Iterator[str]:
        """Listen on ``127.0.0.1:local_port`` for a local gdb or IDE (``target remote HOST:PORT``); yields it.

        While gdb is attached it has the stub (halted on attach, continued by its ``detach``);
        this notebook's debugger calls wait until it has gone.
        """
        forwarder = self._open_forward(local_port)
        print(
            f"{self.display_path}: a local gdb can attach: {self.gdb_command(forwarder.address)}\n"
            "(while it is attached, this notebook's debugger calls wait for it to detach)"
        )
        try:
            yield forwarder.address
        finally:
            self._forwarders.discard(forwarder)
            forwarder.close()

    def serve_gdb(self, local_port: int = 0) -> str:
        """Keep a ``forward()`` open for a local gdb until this client closes; its gdb command line."""
        return self.gdb_command(self._open_forward(local_port).address)

    def _open_forward(self, local_port: int) -> Forwarder:
        forwarder = Forwarder(lambda: self.stream("connect"), local_port, self.display_path)
        self._forwarders.add(forwarder)
        return forwarder

    def gdb_command(self, address: str) -> str:
        """The gdb-multiarch command line that attaches to ``address`` (a ``forward()``)."""
        return f"gdb-multiarch -ex 'target remote {address}'"

    def release(self) -> None:
        for forwarder in list(self._forwarders):
            forwarder.close()
        self._forwarders.clear()

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.debugger.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group


def _ints(state: dict) -> dict:
    """``pc``/``sp`` as ints (they travel as hex text: doubles cannot hold 64-bit addresses)."""
    return {**state, **{k: int(state[k], 16) for k in ("pc", "sp") if state.get(k)}}
