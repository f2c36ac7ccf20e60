"""``GdbServer``: a debugger through GDB's remote serial protocol, the one every probe speaks.

The exporter owns the one connection to the stub (at ``address``: ``host:port`` or
``unix:/path``) and shares it between cells, widgets and a local gdb (``connect``, which
``forward()`` tunnels). At every stop it reads the registers, the code at the program counter
and the memory view once and publishes them (``snapshot``/``watch``): watchers see that,
while everything that touches the target is a control call, the lease holder's.

A stub that went away (a board powered off, a probe server restarted) is attached again at the
next call, and the state says so: what was set in the old one (breakpoints) is gone.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jumpstarter_jupyter.driver import Driver, Signal, export, exportstream
from jumpstarter_jupyter.drivers.debugger.rsp import Stop, open_socket
from jumpstarter_jupyter.drivers.debugger.session import WATCH_KINDS, Session

CODE_WINDOW = 64  # bytes of code published around the program counter
CODE_BEFORE = 16  # of which before the PC, on fixed-width ISAs
SNAPSHOT_REGISTER_BITS = 64  # wider registers (x87, vector) are read by registers(), not published


@dataclass
class GdbServer(Driver):
    """A gdbserver (a probe's GDB server, QEMU's gdbstub, ``gdbserver`` on a target).

    Config: ``address`` (``host:port`` or ``unix:/path``), ``timeout`` (seconds to connect
    and for each answer), ``memory_view`` (bytes of the published memory view).
    """

    client = "jumpstarter_jupyter.drivers.debugger.client.DebuggerClient"

    address: str
    timeout: float = 10.0
    memory_view: int = 256
    changed: Signal = field(default_factory=Signal, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.address.startswith("unix:") or self.address.rpartition(":")[2].isdigit()):
            raise ValueError(f"address must be host:port or unix:/path, got {self.address!r}")
        self._io = threading.RLock()  # one exchange with the stub at a time
        self._session: Session | None = None
        self._status, self._reason, self._notice = "detached", "not attached yet", ""
        self._stops = 0  # stops seen; the snapshot says which one it shows
        self._expecting = ""  # "step" or "halt": what the next stop answers
        self._version = 0
        self._snapshot: dict[str, Any] = {
            "stop": 0,
            "registers": [],
            "changed": [],
            "code": None,
            "memory": None,
        }
        self._breakpoints: dict[str, dict[str, Any]] = {}
        self._view: tuple[int, int] | None = None
        self.relay: Any = None  # the local gdb's session (relay.GdbRelay) while one is attached
        self.relay_stop: Callable[[bytes], None] | None = None

    # connection
    def attach(self, notice: str = "attached") -> None:
        """Connect to the stub now (dropping an old connection): it halts the target, as gdb's attach does."""
        with self._io:
            if self._session is not None:
                self._session.close("replaced by a new connection")
            token = object()
            self._token = token
            with self.changed:
                self._status, self._reason = "attaching", f"connecting to {self.address}"
            session = None
            try:
                session = Session(
                    open_socket(self.address, self.timeout),
                    lambda p: self._on_packet(token, p),
                    lambda reason: self._on_close(token, reason),
                    self.timeout,
                )
                self._session = session
                stop = session.why()
            except (OSError, RuntimeError, ValueError) as exc:
                self._token = None  # the failed connection's end is not news
                if session is not None:
                    session.close("attaching failed")
                self._set_detached(f"cannot attach to {self.address}: {exc}")
                raise ConnectionError(f"cannot attach to the stub at {self.address}: {exc}") from None
            self._breakpoints.clear()
            with self.changed:  # stops count per session
                self._stops, self._notice = 0, notice
                self._snapshot = {"stop": 0, "registers": [], "changed": [], "code": None, "memory": None}
            self.logger.warning("%s: %s", self.address, notice)
            self._stopped(stop, f"attached ({stop.describe()})")

    @contextmanager
    def _control(self) -> Iterator[None]:
        """A turn at the stub for a call of the notebook's: after a local gdb has gone."""
        self.changed.wait(lambda: self.relay is None)  # a cancelled call stops waiting
        with self._io:
            yield

    def _connected(self) -> Session:
        """The live session (call holding ``_io``), attaching anew if the stub went away."""
        if self._session is None or self._session.link.closed:
            known = self._session is not None
            self.attach(
                "the stub is new: attached again (breakpoints set before are gone)" if known else "attached"
            )
        return self._session

    def _set_detached(self, reason: str) -> None:
        with self.changed:
            self._status, self._reason = "detached", reason
            self._version += 1
            self.changed.notify()

    def _on_close(self, token: object, reason: str) -> None:
        if token is getattr(self, "_token", None):
            self._set_detached(reason)
            relay = self.relay
            if relay is not None:
                relay.close()

    def _on_packet(self, token: object, payload: bytes) -> bool:
        """Reader thread: a stop reply (or console output) while the target runs is ours to handle."""
        if token is not getattr(self, "_token", None) or self._status != "running":
            return False
        if payload[:1] == b"O" and payload != b"OK":
            self.logger.info(
                "target output: %s", bytes.fromhex(payload[1:].decode()).decode(errors="replace")
            )
            return True
        if payload[:1] not in b"TSWX" or not payload:
            return False
        self._stopped(Stop.parse(payload))
        if self.relay_stop is not None:
            self.relay_stop(payload)
        return True

    def _stopped(self, stop: Stop, reason: str = "") -> None:
        """Record a stop and read the snapshot for it on a thread of its own (the reader must not wait)."""
        with self.changed:
            if stop.kind in "WX":
                self._status, self._reason = "detached", stop.describe()
            else:
                self._status = "halted"
                self._reason = reason or ("step" if self._expecting == "step" else stop.describe())
            self._expecting = ""
            self._stops += 1
            if stop.kind in "WX":
                self._version += 1  # a halt is published with its snapshot (and the breakpoint it names)
            self.changed.notify()
            number = self._stops
        if stop.kind not in "WX":
            threading.Thread(
                target=self._refresh, args=(self._session, number), name="gdb snapshot", daemon=True
            ).start()

    # the published snapshot
    def _refresh(self, session: Session, number: int) -> None:
        """Read registers, code and the memory view for stop ``number`` (if the target is still there)."""
        with self._io:
            if session is not self._session:
                return  # a stop of a connection replaced since
            snapshot: dict[str, Any] = {
                "stop": number,
                "registers": [],
                "changed": [],
                "code": None,
                "memory": None,
            }
            try:
                if self._status == "halted" and self._stops == number and not session.link.closed:
                    self._read_snapshot(session, snapshot)
            except (OSError, RuntimeError, ValueError) as exc:
                snapshot["error"] = f"reading the target failed: {exc}"
            with self.changed:
                previous = dict(self._snapshot["registers"])
                snapshot["changed"] = [
                    n for n, v in snapshot["registers"] if n in previous and previous[n] != v
                ]
                self._snapshot = snapshot
                self._version += 1
                self.changed.notify()

    def _read_snapshot(self, session: Session, snapshot: dict[str, Any]) -> None:
        widths = {r.name: r.bitsize for r in session.target.registers}
        values = session.registers()
        snapshot["registers"] = [
            (name, _hex(value, widths[name]))
            for name, value in values.items()
            if widths[name] <= SNAPSHOT_REGISTER_BITS
        ]
        pc = values.get(session.arch.pc)
        if pc is not None:
            hit = next((b for b in self._breakpoints.values() if b["address"] == pc and b["type"] < 2), None)
            if hit is not None and self._reason == "SIGTRAP":
                with self.changed:
                    self._reason = f"breakpoint at {hit['label'] or hex(pc)}"
            start = pc - CODE_BEFORE if session.arch.fixed_width else pc
            snapshot["code"] = self._read_region(session, start, CODE_WINDOW)
        if self._view is not None:
            snapshot["memory"] = self._read_region(session, *self._view)

    @staticmethod
    def _read_region(session: Session, address: int, size: int) -> dict[str, Any]:
        try:
            return {"address": hex(address), "hex": session.read(address, size).hex(), "error": ""}
        except (RuntimeError, ValueError) as exc:
            return {"address": hex(address), "hex": "", "error": str(exc)}

    def _describe(self) -> dict[str, Any]:
        """The state as plain data (call holding ``changed``)."""
        session = self._session
        arch = session.arch if session is not None else None
        registers = dict(self._snapshot["registers"]) if self._snapshot["stop"] == self._stops else {}
        return {
            "state": self._status,
            "reason": self._reason,
            "notice": self._notice,
            "address": self.address,
            "architecture": session.target.architecture if session is not None else "",
            "pc": registers.get(arch.pc) if arch else None,
            "sp": registers.get(arch.sp) if arch else None,
            "stops": self._stops,
            "gdb": self.relay.description if self.relay is not None else "",
        }

    @export(readonly=True)
    def state(self) -> dict:
        """``state`` (detached, running, halted), why it stopped, ``pc``/``sp`` (hex), ``notice``."""
        with self.changed:
            return self._describe()

    @export(readonly=True)
    def snapshot(self) -> dict:
        """What the exporter read at the last stop: state, registers, changed ones, code at the PC,
        memory view, breakpoints. Every viewer sees the same."""
        with self.changed:
            return self._published()

    def _published(self) -> dict[str, Any]:
        snapshot = self._snapshot
        current = snapshot["stop"] == self._stops and self._status == "halted"
        return {
            **self._describe(),
            "version": self._version,
            "registers": snapshot["registers"] if current else [],
            "changed": snapshot["changed"] if current else [],
            "code": snapshot["code"] if current else None,
            "memory": snapshot["memory"] if current else None,
            "error": snapshot.get("error", ""),
            "breakpoints": self._breakpoint_list(),
        }

    def _breakpoint_list(self) -> list[dict[str, Any]]:
        return [{**b, "address": hex(b["address"])} for b in self._breakpoints.values()]

    @export(readonly=True)
    async def watch(self) -> AsyncIterator[dict]:
        """The snapshot now and after every change (a stop, a resume, a breakpoint set)."""
        seen = -1
        while True:
            await self.changed.wait_async(lambda seen=seen: self._version != seen)
            with self.changed:
                seen, published = self._version, self._published()
            yield published

    @export(readonly=True)
    def wait_for_stop(self, timeout: float = 30.0) -> dict:
        """Wait until the target is halted (at once if it is) and its snapshot is read; the state."""
        if not self.changed.wait(self._settled, timeout):
            raise TimeoutError(f"the target did not stop within {timeout} s ({self._status}: {self._reason})")
        return self.state()

    def _settled(self) -> bool:
        return (
            self._status != "running"
            and self._status != "attaching"
            and (self._status != "halted" or self._snapshot["stop"] == self._stops)
        )

    # control
    @export
    def halt(self, timeout: float = 10.0) -> dict:
        """Stop the target (0x03) and return its state once the snapshot is read."""
        with self._control():
            session = self._connected()
            if self._status == "running":
                self._expecting = "halt"
                session.link.interrupt()
        return self.wait_for_stop(timeout)

    @export
    def resume(self) -> dict:
        """Continue the target (stepping over a breakpoint at the PC first)."""
        with self._control():
            session = self._connected()
            if self._status != "halted":
                return self.state()
            self._step_over(session)
            self._run(session, b"c", "")
        return self.state()

    @export
    def step(self, count: int = 1, timeout: float = 10.0) -> dict:
        """Execute ``count`` instructions; the state after the last one."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        for _ in range(count):
            with self._control():
                session = self._halted()
                hit = self._breakpoint_at_pc(session)
                if hit is not None:
                    session.remove(hit["type"], hit["address"], hit["length"])
                self._run(session, b"s", "step")
            self.wait_for_stop(timeout)
            if hit is not None:
                with self._control():
                    session.insert(hit["type"], hit["address"], hit["length"])
        return self.state()

    def _run(self, session: Session, packet: bytes, expecting: str) -> None:
        with self.changed:
            self._status, self._reason, self._expecting = "running", "", expecting
            self._version += 1
            self.changed.notify()
        session.link.send(packet)

    def _step_over(self, session: Session) -> None:
        """Stubs stop again at once on a breakpoint under the PC: lift it for one step (as gdb does)."""
        hit = self._breakpoint_at_pc(session)
        if hit is None:
            return
        session.remove(hit["type"], hit["address"], hit["length"])
        self._run(session, b"s", "step")
        if not self.changed.wait(lambda: self._status != "running", self.timeout):
            raise TimeoutError(f"stepping over the breakpoint at {hex(hit['address'])} did not stop")
        session.insert(hit["type"], hit["address"], hit["length"])

    def _breakpoint_at_pc(self, session: Session) -> dict[str, Any] | None:
        pc = session.register(next(r for r in session.target.registers if r.name == session.arch.pc))
        return next((b for b in self._breakpoints.values() if b["address"] == pc and b["type"] < 2), None)

    def _halted(self) -> Session:
        """The session of a halted target (call holding ``_io``); a running one is refused."""
        session = self._connected()
        if self._status != "halted":
            raise RuntimeError(f"the target is {self._status}: halt() first")
        return session

    @export
    def registers(self) -> dict:
        """Every register of the target description, read now: name -> hex value (None: unavailable)."""
        with self._control():
            session = self._halted()
            widths = {r.name: r.bitsize for r in session.target.registers}
            values = session.registers()
            for register in session.target.registers:
                if register.name not in values:
                    values[register.name] = session.register(register)
            return {name: _hex(value, widths[name]) for name, value in values.items()}

    @export
    def read_memory(self, address: str, size: int) -> str:
        """``size`` bytes at ``address`` (hex text), base64-encoded."""
        if not 0 < size <= 1 << 24:
            raise ValueError(f"size must be 1 to 16 MiB, got {size}")
        with self._control():
            return base64.b64encode(self._halted().read(_address(address), size)).decode()

    @export
    def write_memory(self, address: str, data: str) -> None:
        """Write ``data`` (base64) at ``address`` (hex text)."""
        with self._control():
            self._halted().write(_address(address), base64.b64decode(data))

    @export
    def breakpoint(self, address: str, label: str = "", hardware: bool = False) -> dict:
        """Set a software (or hardware) breakpoint at ``address``; ``label`` names it (a symbol)."""
        with self._control():
            session = self._connected()
            return self._insert(1 if hardware else 0, _address(address), session.arch.breakpoint_kind, label)

    @export
    def watchpoint(self, address: str, size: int, kind: str = "write", label: str = "") -> dict:
        """Stop when ``size`` bytes at ``address`` are written, read or accessed (``kind``)."""
        if kind not in WATCH_KINDS:
            raise ValueError(f"kind must be one of {', '.join(WATCH_KINDS)}, got {kind!r}")
        with self._control():
            self._connected()
            return self._insert(WATCH_KINDS[kind], _address(address), size, label)

    def _insert(self, kind: int, address: int, length: int, label: str) -> dict:
        point = {
            "id": f"{kind}:{address:x}",
            "type": kind,
            "kind": KIND_NAMES[kind],
            "address": address,
            "length": length,
            "label": label,
        }
        self._while_halted(lambda session: session.insert(kind, address, length))
        with self.changed:
            self._breakpoints[point["id"]] = point
            self._version += 1
            self.changed.notify()
        return {**point, "address": hex(address)}

    @export
    def remove(self, address: str) -> list:
        """Remove the breakpoints and watchpoints at ``address`` (hex text, or an id); their ids."""
        with self._control():
            self._connected()
            found = [
                p
                for p in self._breakpoints.values()
                if p["id"] == address or (address[:2] == "0x" and p["address"] == _address(address))
            ]
            if not found:
                raise ValueError(f"no breakpoint or watchpoint at {address}")
            for point in found:
                self._while_halted(lambda s, p=point: s.remove(p["type"], p["address"], p["length"]))
                with self.changed:
                    del self._breakpoints[point["id"]]
                    self._version += 1
                    self.changed.notify()
            return [p["id"] for p in found]

    def _while_halted(self, work: Callable[[Session], None]) -> None:
        """Run ``work`` on a halted target: a running one is stopped for it and continued (as gdb does)."""
        session = self._connected()
        if self._status != "running":
            work(session)
            return
        self._expecting = "halt"
        session.link.interrupt()
        if not self.changed.wait(lambda: self._status != "running", self.timeout):
            raise TimeoutError(f"the target did not stop within {self.timeout} s")
        work(session)
        self._run(session, b"c", "")

    @export
    def view(self, address: str, size: int = 0) -> dict:
        """Publish ``size`` bytes (default ``memory_view``) at ``address`` with every stop; the snapshot."""
        size = size or self.memory_view
        if not 0 < size <= 4096:
            raise ValueError(f"size must be 1 to 4096 bytes, got {size}")
        with self._control():
            self._view = (_address(address), size)
            if self._status == "halted" and self._session is not None:
                memory = self._read_region(self._session, *self._view)
                with self.changed:
                    self._snapshot = {**self._snapshot, "memory": memory}
                    self._version += 1
                    self.changed.notify()
        return self.snapshot()

    @exportstream
    def connect(self) -> Any:
        """The stub for a local gdb (``target remote`` through ``forward()``); the notebook's calls wait."""
        from jumpstarter_jupyter.drivers.debugger.relay import GdbRelay

        with self._io:
            self._connected()
            if self.relay is not None:
                raise RuntimeError(
                    f"a local gdb is attached already ({self.relay.description}): one at a time"
                )
            self.relay = GdbRelay(self)
        return self.relay

    # the local gdb's session (relay.GdbRelay calls these)
    def halt_for_gdb(self) -> None:
        """gdb attaches to a stopped target, as a stub halts it for gdb's attach."""
        if self._status == "running":
            self._expecting = "halt"
            self._session.link.interrupt()
            if not self.changed.wait(lambda: self._status != "running", self.timeout):
                raise TimeoutError(f"the target did not stop for gdb within {self.timeout} s")

    def interrupt_for_gdb(self) -> None:
        self._expecting = "halt"
        self._session.link.interrupt()

    def run_for_gdb(self, payload: bytes) -> bytes | None:
        with self._io:
            self._run(self._session, payload, "step" if payload[:1] in b"sS" or b";s" in payload else "")
        return None

    def send_for_gdb(self, payload: bytes) -> None:
        with self._io:
            self._session.link.send(payload)

    def request_for_gdb(self, payload: bytes) -> bytes:
        with self._io:
            return self._session.link.request(payload)

    def detach_gdb(self) -> None:
        """gdb's ``detach`` lets the target run on, as on any stub."""
        self.relay_stop = None  # gdb has gone: the stops from here on are the driver's
        with self._io:
            if self._status == "halted":
                self._step_over(self._session)
                self._run(self._session, b"c", "")

    def gdb_gone(self, relay: Any) -> None:
        with self.changed:
            if self.relay is relay:
                self.relay, self.relay_stop = None, None
                self._version += 1
                self.changed.notify()
        self.logger.info("%s: the local gdb detached; the notebook has the stub again", self.address)

    def teardown(self) -> None:
        with self._io:
            if self._session is not None:
                self._token = None
                self._session.close("the exporter is stopping")


KIND_NAMES = {
    0: "breakpoint",
    1: "hardware breakpoint",
    2: "watchpoint (write)",
    3: "watchpoint (read)",
    4: "watchpoint (access)",
}


def _address(text: str) -> int:
    try:
        return int(str(text), 0)
    except ValueError:
        raise ValueError(
            f"not an address: {text!r} (hex text such as '0xffff8000'; symbols are the client's)"
        ) from None


def _hex(value: int | None, bits: int) -> str | None:
    return None if value is None else f"0x{value:0{bits // 4}x}"
