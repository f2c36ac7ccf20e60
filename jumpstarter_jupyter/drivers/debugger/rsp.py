"""GDB's remote serial protocol (RSP), as the GDB manual's "Remote Protocol" appendix specifies it.

Every probe server (OpenOCD, pyOCD, probe-rs, J-Link's GDB server, ``gdbserver``) and QEMU's
gdbstub speak it. A packet is ``$payload#cs``: ``cs`` is the payload's byte sum modulo 256 in
two hex digits; the receiver answers ``+`` (or ``-``: send it again) until both sides agree on
``QStartNoAckMode``. In a payload ``}`` escapes the next byte (XOR 0x20) and ``X*N`` repeats
``X`` ``ord(N) - 29`` more times (run-length encoding). A lone byte 0x03 interrupts a running
target. Stop replies: ``S AA`` / ``T AA key:value;...`` (stopped by signal AA), ``W AA`` (exited),
``X AA`` (terminated).

:class:`Framer` turns bytes into packets (both directions); :class:`RspConnection` is one
blocking connection: a reader thread hands each packet to ``on_packet`` and requests wait for
their reply; :func:`parse_target` reads a target description (``qXfer:features:read``).
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)
INTERRUPT = b"\x03"
DEFAULT_PACKET_SIZE = 400  # what the manual lets a client assume without a PacketSize feature
STOP_KINDS = "TSWX"
SIGNALS = {2: "SIGINT", 5: "SIGTRAP", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}


class RspError(RuntimeError):
    """The stub answered ``E NN`` (or the exchange broke); the message says which request."""


def checksum(payload: bytes) -> int:
    """The packet checksum: the payload's bytes summed modulo 256."""
    return sum(payload) & 0xFF


def frame(payload: bytes) -> bytes:
    """``$payload#cs`` (the payload already escaped where its packet type needs it)."""
    return b"$" + payload + b"#%02x" % checksum(payload)


def escape(data: bytes) -> bytes:
    """Escape ``$``, ``#``, ``}`` and ``*`` in binary data (``X`` packets, qXfer replies)."""
    return re.sub(rb"[$#}*]", lambda m: b"}" + bytes([m.group()[0] ^ 0x20]), data)


def decode(payload: bytes) -> bytes:
    """Undo escapes and run-length encoding of a received payload."""
    if b"}" not in payload and b"*" not in payload:
        return payload
    out = bytearray()
    i = 0
    while i < len(payload):
        byte = payload[i]
        if byte == 0x7D and i + 1 < len(payload):  # '}'
            out.append(payload[i + 1] ^ 0x20)
            i += 2
        elif byte == 0x2A and out and i + 1 < len(payload):  # '*': repeat the previous byte
            out.extend(out[-1:] * (payload[i + 1] - 29))
            i += 2
        else:
            out.append(byte)
            i += 1
    return bytes(out)


class Framer:
    """Split a byte stream into acks (``+``/``-``), interrupts (0x03) and checked packets.

    ``feed(data)`` yields ``("ack", b"+")``, ``("interrupt", b"\\x03")``, ``("packet", payload)``
    (raw, still escaped) or ``("bad", payload)`` for a checksum mismatch.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[str, bytes]]:
        self._buffer += data
        buffer = self._buffer
        while buffer:
            first = buffer[0]
            if first in b"+-":
                del buffer[0]
                yield "ack", bytes([first])
            elif first == 0x03:
                del buffer[0]
                yield "interrupt", INTERRUPT
            elif first in b"$%":  # '%': a notification (non-stop mode), framed the same way
                end = buffer.find(b"#", 1)
                if end < 0 or len(buffer) < end + 3:
                    return  # the rest has not arrived
                payload, digits = bytes(buffer[1:end]), bytes(buffer[end + 1 : end + 3])
                del buffer[: end + 3]
                try:
                    good = int(digits, 16) == checksum(payload)
                except ValueError:
                    good = False
                yield ("packet" if good else "bad"), payload
            else:
                del buffer[0]  # line noise between packets


@dataclass(frozen=True)
class Register:
    """One register of the target description: name, size in bits, number, type and group."""

    name: str
    bitsize: int
    regnum: int
    type: str = "int"
    group: str = ""


@dataclass
class Target:
    """What ``qXfer:features:read:target.xml`` says: the architecture and the register set."""

    architecture: str = ""
    registers: list[Register] = field(default_factory=list)


def parse_target(read_annex: Callable[[str], bytes], annex: str = "target.xml") -> Target:
    """Read a target description and the files it includes (``xi:include``), in document order.

    A register without ``regnum`` takes the number after the previous one, as GDB numbers them.
    """
    target = Target()
    _parse_annex(read_annex, annex, target, [0])
    return target


def _parse_annex(
    read_annex: Callable[[str], bytes], annex: str, target: Target, next_number: list[int]
) -> None:
    text = read_annex(annex)
    # QEMU writes <xi:include> without declaring the xi prefix: read it as a plain <include>
    text = re.sub(rb"<(/?)xi:include", rb"<\1include", text)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"the stub's target description {annex} is not valid XML: {exc}") from None
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "architecture" and element.text:
            target.architecture = element.text.strip()
        elif tag == "include" and element.get("href"):
            _parse_annex(read_annex, element.get("href"), target, next_number)
        elif tag == "reg":
            number = int(element.get("regnum", next_number[0]))
            next_number[0] = number + 1
            target.registers.append(
                Register(
                    element.get("name", f"r{number}"),
                    int(element.get("bitsize", "32")),
                    number,
                    element.get("type", "int"),
                    element.get("group", ""),
                )
            )


@dataclass(frozen=True)
class Stop:
    """A stop reply: ``kind`` is ``T``/``S`` (stopped), ``W`` (exited) or ``X`` (terminated)."""

    kind: str
    signal: int
    info: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, payload: bytes) -> Stop:
        text = payload.decode("ascii", "replace")
        info = {}
        if text[0] == "T":
            for pair in filter(None, text[3:].split(";")):
                key, _, value = pair.partition(":")
                info[key] = value
        return cls(text[0], int(text[1:3], 16), info)

    def describe(self) -> str:
        """In words: ``"breakpoint"``-free, since only the caller knows what it set."""
        name = SIGNALS.get(self.signal, f"signal {self.signal}")
        if self.kind == "W":
            return f"the program exited with status {self.signal}"
        if self.kind == "X":
            return f"the program was terminated by {name}"
        for key, what in (("watch", "write"), ("rwatch", "read"), ("awatch", "access")):
            if key in self.info:
                return f"watchpoint ({what}) at 0x{int(self.info[key], 16):x}"
        return name


class RspConnection:
    """One connection to a gdbserver: framing, acks (until no-ack mode) and request/reply.

    A reader thread parses what arrives; every packet goes to ``on_packet(payload)``, which
    returns True when it consumed it (a stop reply while the target runs, console output);
    other packets are replies to :meth:`request`. ``on_close(reason)`` is called once when the
    connection ends.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_packet: Callable[[bytes], bool],
        on_close: Callable[[str], None],
        timeout: float = 10.0,
    ):
        self.sock, self.timeout = sock, timeout
        self.ack_mode = True
        self._on_packet, self._on_close = on_packet, on_close
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self._acks: queue.SimpleQueue = queue.SimpleQueue()
        self._send_lock = threading.Lock()
        self.closed: str | None = None  # why the connection ended
        self._thread = threading.Thread(target=self._read, name="gdb remote reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        framer = Framer()
        reason = "the stub closed the connection"
        try:
            while data := self.sock.recv(65536):
                for kind, payload in framer.feed(data):
                    self._dispatch(kind, payload)
        except OSError as exc:
            reason = f"the connection to the stub failed: {exc.strerror or exc}"
        if self.closed is None:
            self.closed = reason
        self._replies.put(None)
        self._acks.put(None)
        self._on_close(self.closed)

    def _dispatch(self, kind: str, payload: bytes) -> None:
        if kind == "ack":
            self._acks.put(payload)
        elif kind == "bad":
            if self.ack_mode:
                self._send(b"-")  # asks the stub to send it again
        elif kind == "packet":
            if self.ack_mode:
                self._send(b"+")
            payload = decode(payload)
            try:
                consumed = self._on_packet(payload)
            except ValueError:  # a malformed stop reply or console output: keep reading
                logger.warning("the stub sent a malformed packet: %r", payload[:80])
                consumed = True
            if not consumed:
                self._replies.put(payload)

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        """Send one packet without waiting for a reply (``c``, ``s``: the reply is a later stop)."""
        if self.closed:
            raise ConnectionResetError(self.closed)
        packet = frame(payload)
        for _ in range(3):
            self._send(packet)
            try:
                if not self.ack_mode or self._acks.get(timeout=self.timeout) == b"+":
                    return
            except queue.Empty:
                what = payload[:24].decode(errors="replace")
                raise TimeoutError(f"the stub did not acknowledge {what!r} within {self.timeout} s") from None
        raise RspError(f"the stub refused {payload[:20]!r} three times (bad checksums on the line?)")

    def request(self, payload: bytes, timeout: float | None = None) -> bytes:
        """Send ``payload`` and return the stub's reply; ``E NN`` raises :class:`RspError`."""
        self.send(payload)
        return self.reply(payload, timeout)

    def requests(self, payloads: list[bytes], window: int = 4) -> Iterator[bytes]:
        """The replies to ``payloads``, with up to ``window`` requests in flight (stubs answer in order)."""
        waiting: list[bytes] = []
        for payload in payloads:
            self.send(payload)
            waiting.append(payload)
            if len(waiting) == window:
                yield self.reply(waiting.pop(0))
        for payload in waiting:
            yield self.reply(payload)

    def reply(self, payload: bytes, timeout: float | None = None) -> bytes:
        """The stub's next reply, to ``payload`` (sent already)."""
        try:
            reply = self._replies.get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise TimeoutError(
                f"the stub did not answer {payload[:24].decode(errors='replace')!r} "
                f"within {timeout or self.timeout} s"
            ) from None
        if reply is None:
            self._replies.put(None)  # later requests fail the same way
            raise ConnectionResetError(self.closed or "the stub closed the connection")
        if len(reply) == 3 and reply[:1] == b"E" and reply[1:].isalnum():
            raise RspError(f"the stub answered {reply.decode()} to {payload[:24].decode(errors='replace')!r}")
        return reply

    def interrupt(self) -> None:
        """The 0x03 byte: a running target stops (its stop reply follows)."""
        self._send(INTERRUPT)

    def close(self, reason: str = "closed by the driver") -> None:
        if self.closed is None:
            self.closed = reason
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._thread is not threading.current_thread():
            self._thread.join(5)


def open_socket(address: str, timeout: float) -> socket.socket:
    """Connect to ``host:port`` or ``unix:/path`` within ``timeout`` seconds."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(timeout)
        sock.connect(address[5:])
    else:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"address must be host:port or unix:/path, got {address!r}")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    return sock
