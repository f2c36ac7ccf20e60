"""One debugging session with a stub: the handshake, then registers, memory and break/watchpoints.

The commands are the RSP's own: ``qSupported`` (features, ``PacketSize``), ``QStartNoAckMode``,
``qXfer:features:read`` (the register set), ``g``/``p`` (registers), ``m``/``M`` (memory,
chunked by the packet size), ``Z``/``z`` 0-4 (software and hardware breakpoints; write, read
and access watchpoints), ``c``/``s`` (continue, step) and ``?`` (why the target stopped).
Values are little-endian (every target this project runs: x86, Arm, RISC-V).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

from jumpstarter_jupyter.drivers.debugger.rsp import (
    DEFAULT_PACKET_SIZE,
    Register,
    RspConnection,
    Stop,
    Target,
    parse_target,
)

WATCH_KINDS = {"write": 2, "read": 3, "access": 4}


@dataclass(frozen=True)
class Architecture:
    """What the RSP leaves to the client: the PC and SP names, breakpoint kind, code window."""

    pc: str
    sp: str
    breakpoint_kind: int  # the Z packet's "kind": the breakpoint instruction's size
    fixed_width: int  # instruction size of fixed-width ISAs (0: variable, disassemble from the PC)


ARCHITECTURES = {
    "i386:x86-64": Architecture("rip", "rsp", 1, 0),
    "i386": Architecture("eip", "esp", 1, 0),
    "aarch64": Architecture("pc", "sp", 4, 4),
    "arm": Architecture("pc", "sp", 4, 4),
    "riscv": Architecture("pc", "sp", 4, 0),
}
FALLBACK = Architecture("pc", "sp", 4, 0)


def architecture(name: str) -> Architecture:
    """The facts for a target description's ``<architecture>`` (``riscv:rv64`` finds ``riscv``)."""
    return ARCHITECTURES.get(name) or ARCHITECTURES.get(name.split(":")[0]) or FALLBACK


class Session:
    """A handshaken connection: ``target`` (architecture, registers) and the commands on it."""

    def __init__(
        self,
        sock: socket.socket,
        on_packet: Callable[[bytes], bool],
        on_close: Callable[[str], None],
        timeout: float,
    ):
        self.link = RspConnection(sock, on_packet, on_close, timeout)
        try:
            self._handshake()
        except BaseException:
            self.link.close("the handshake failed")
            raise

    def _handshake(self) -> None:
        """Features, no-ack mode where offered, and the target description."""
        self.features = self._supported()
        self.packet_size = int(self.features.get("PacketSize", f"{DEFAULT_PACKET_SIZE:x}"), 16)
        if self.features.get("QStartNoAckMode") == "+":
            self.link.request(b"QStartNoAckMode")
            self.link.ack_mode = False
        self.target = (
            parse_target(self._annex) if self.features.get("qXfer:features:read") == "+" else Target()
        )
        self.arch = architecture(self.target.architecture)

    def _supported(self) -> dict[str, str]:
        reply = self.link.request(b"qSupported:multiprocess-;swbreak+;hwbreak+;xmlRegisters=i386")
        features = {}
        for item in reply.decode().split(";"):
            if "=" in item:
                name, value = item.split("=", 1)
                features[name] = value
            elif item[-1:] in "+-?":
                features[item[:-1]] = item[-1]
        return features

    def _annex(self, name: str) -> bytes:
        """One target-description file, read in pieces of the packet size."""
        data, offset, piece = b"", 0, self.packet_size - 8
        while True:
            reply = self.link.request(b"qXfer:features:read:%s:%x,%x" % (name.encode(), offset, piece))
            data += reply[1:]
            offset += len(reply) - 1
            if reply[:1] != b"m":
                return data

    def why(self) -> Stop:
        """``?``: the stop the target is in (QEMU and probes halt a target when gdb attaches)."""
        return Stop.parse(self.link.request(b"?"))

    # registers
    def registers(self) -> dict[str, int | None]:
        """Every register of the ``g`` packet, then each other one through ``p``; None: unavailable."""
        values: dict[str, int | None] = {}
        data, offset = self.link.request(b"g"), 0
        for register in sorted(self.target.registers, key=lambda r: r.regnum):
            width = register.bitsize // 4
            if offset + width > len(data):
                break
            values[register.name] = _value(data[offset : offset + width])
            offset += width
        return values

    def register(self, register: Register) -> int | None:
        return _value(self.link.request(b"p%x" % register.regnum))

    # memory
    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address``, in ``m`` packets whose hex reply fits the packet size."""
        chunk = max(self.packet_size // 2, 16)
        packets = [b"m%x,%x" % (address + at, min(chunk, size - at)) for at in range(0, size, chunk)]
        return b"".join(bytes.fromhex(reply.decode()) for reply in self.link.requests(packets))

    def write(self, address: int, data: bytes) -> None:
        chunk = max((self.packet_size - 32) // 2, 16)
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            self._ok(b"M%x,%x:%s" % (address + start, len(piece), piece.hex().encode()))

    # breakpoints and watchpoints
    def insert(self, kind: int, address: int, length: int) -> None:
        """``Z kind``: 0 software and 1 hardware breakpoint, 2 write, 3 read, 4 access watchpoint."""
        self._ok(b"Z%d,%x,%x" % (kind, address, length), f"Z{kind}")

    def remove(self, kind: int, address: int, length: int) -> None:
        self._ok(b"z%d,%x,%x" % (kind, address, length), f"z{kind}")

    def _ok(self, payload: bytes, what: str = "") -> None:
        reply = self.link.request(payload)
        if reply == b"":
            raise NotImplementedError(f"the stub does not support {what or payload[:1].decode()} packets")
        if reply != b"OK":
            raise RuntimeError(f"the stub answered {reply[:40]!r} to {payload[:30]!r}")

    def close(self, reason: str) -> None:
        self.link.close(reason)


def _value(hex_digits: bytes) -> int | None:
    """A little-endian register value from its hex digits; None for ``xx`` (unavailable)."""
    if b"x" in hex_digits:
        return None
    return int.from_bytes(bytes.fromhex(hex_digits.decode()), "little")
