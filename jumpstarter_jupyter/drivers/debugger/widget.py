"""``DebuggerWidget``: the target's state with halt / continue / step, registers, code, memory, breakpoints.

It follows the driver's ``watch`` stream: the exporter reads the registers, the code at the PC
and the memory view once per stop and publishes them, so every viewer (a watcher too) shows
the same stop; changed registers are marked. Disassembly (capstone) and symbol names are done
here, in the kernel, from the published bytes and this client's symbols.
"""

from __future__ import annotations

import string
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.debugger.client import DebuggerClient
from jumpstarter_jupyter.jupyter.watcher import WidgetWatcher
from jumpstarter_jupyter.jupyter.widget import DriverWidget

ROW = 16  # bytes per memory row
PRINTABLE = set(string.printable.encode()) - set(b"\t\n\r\x0b\x0c")


class DebuggerWidget(DriverWidget):
    """State and controls, registers (changed ones marked), disassembly, memory view, breakpoints."""

    bundle = "debugger"
    summarized = ("status", "registers", "breakpoints")
    status = traitlets.Dict().tag(sync=True)  # state, reason, notice, gdb, architecture, pc
    registers = traitlets.List().tag(sync=True)  # [name, hex value, changed]
    code = traitlets.List().tag(sync=True)  # [address, symbol, bytes, text, at the pc]
    memory = traitlets.Dict().tag(sync=True)  # address, label, rows [[address, hex, ascii]], error
    breakpoints = traitlets.List().tag(sync=True)  # [{id, kind, address, label}]

    def __init__(self, client: DebuggerClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._view_label = ""
        self._watcher = WidgetWatcher(self, "following the debugger", self._follow)

    def _follow(self, watcher: WidgetWatcher) -> None:
        snapshots = self.client.watch()
        try:
            for snapshot in snapshots:
                watcher.update(**self._view_of(snapshot))
                if watcher.stopped.is_set():
                    return
        finally:
            snapshots.close()

    def summarize(self) -> str:
        """The state, the registers (changed ones marked) and the breakpoints, as text."""
        status = self.status or {}
        reason = f" ({status['reason']})" if status.get("reason") else ""
        at = f" pc {status['pc']}" if status.get("pc") and status.get("state") == "halted" else ""
        lines = [f"{status.get('state') or 'unknown'}{reason}{at}"]
        lines += [
            f"{name} = {value}{'  (changed)' if changed else ''}" for name, value, changed in self.registers
        ]
        lines += [f"{b['kind']} at {b['address']} {b['label']}".rstrip() for b in self.breakpoints]
        return "\n".join(lines)

    def _view_of(self, snapshot: dict) -> dict[str, Any]:
        changed = set(snapshot["changed"])
        status = {
            k: snapshot.get(k) or "" for k in ("state", "reason", "notice", "gdb", "architecture", "pc")
        }
        if snapshot.get("error"):
            status["reason"] = f"{status['reason']}; {snapshot['error']}"
        return {
            "status": status,
            "registers": [[n, v or "unavailable", n in changed] for n, v in snapshot["registers"]],
            "code": self._code_lines(snapshot),
            "memory": self._memory_rows(snapshot.get("memory")),
            "breakpoints": [
                {k: b[k] for k in ("id", "kind", "address", "label")} for b in snapshot["breakpoints"]
            ],
        }

    def _code_lines(self, snapshot: dict) -> list[list[Any]]:
        if not snapshot.get("code") or not snapshot["code"].get("hex"):
            return []
        pc = int(snapshot["pc"], 16) if snapshot.get("pc") else -1
        try:
            lines = self.client.disassemble(snapshot)
        except (ImportError, ValueError) as exc:  # no capstone, or an architecture it lacks
            return [["", "", "", str(exc), False]]
        return [[hex(address), symbol, raw, text, address == pc] for address, raw, text, symbol in lines]

    def _memory_rows(self, memory: dict | None) -> dict[str, Any]:
        if not memory:
            return {}
        data, start = bytes.fromhex(memory["hex"]), int(memory["address"], 16)
        rows = [
            [
                f"{start + i:x}",
                " ".join(f"{b:02x}" for b in data[i : i + ROW]),
                "".join(chr(b) if b in PRINTABLE else "." for b in data[i : i + ROW]),
            ]
            for i in range(0, len(data), ROW)
        ]
        label = self._view_label or self.client.symbolize(start)
        return {"address": memory["address"], "label": label, "rows": rows, "error": memory["error"]}

    # the front end's buttons
    def action_halt(self) -> None:
        self.client.halt()

    def action_resume(self) -> None:
        self.client.resume()

    def action_step(self, count: int = 1) -> None:
        self.client.step(int(count))

    def action_view(self, where: str, size: int = 0) -> None:
        self._view_label = where if not where.strip().lower().startswith("0x") else ""
        self.client.view(where.strip(), int(size))

    def action_breakpoint(self, where: str) -> None:
        self.client.breakpoint(where.strip())

    def action_remove(self, ident: str) -> None:
        self.client.remove(ident)

    def stop(self) -> None:
        self._watcher.stop()
