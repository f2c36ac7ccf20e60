"""Decoding frames with a DBC (or KCD, SYM, ARXML) database, through cantools.

cantools is an optional dependency (the ``can`` extra: ``pip install 'jumpstarter-jupyter[can]'``);
everything else about CAN works without it. A decoded frame keeps the numbers (scaled, with
units) and the names of enumerated values::

    >>> from jumpstarter_jupyter.drivers.virtual.firmware_can import DBC  # the virtual board's
    >>> db = load(DBC)
    >>> status = can.Message(arbitration_id=0x100, data=bytes.fromhex("7b00009f01010307"), is_extended_id=False)
    >>> frame = decode(db, status)
    >>> frame["Temperature"], frame.units["Temperature"], frame.text("Led")
    (41.5, 'degC', 'on')
    >>> str(frame)
    'Status: Uptime=12.3 s Temperature=41.5 degC Led=on Button=released State=running Counter=7'

It is a read-only mapping of signal names to numbers, as cantools' own result is a dict::

    >>> "Led" in frame, len(frame), dict(frame)["Counter"]
    (True, 6, 7)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import can

SignalTest = Callable[["Decoded"], bool]


@dataclass(frozen=True, eq=False)  # equality is the Mapping's: equal signal values
class Decoded(Mapping):
    """One decoded frame: its message name, signal values (numbers), units and value names.

    A read-only mapping of signal name to value, as cantools' result is: ``dict(decoded)``,
    ``decoded.items()``, ``"Led" in decoded`` and ``decoded == {...}`` work on it.
    """

    message: str
    signals: dict[str, float | int]
    units: dict[str, str] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)  # signal -> name of its present value

    def __getitem__(self, signal: str) -> float | int:
        return self.signals[signal]

    def __iter__(self) -> Iterator[str]:
        return iter(self.signals)

    def __len__(self) -> int:
        return len(self.signals)

    def text(self, signal: str) -> str:
        """The value as a person reads it: its name if the database names it, else number and unit."""
        if signal in self.choices:
            return self.choices[signal]
        unit = self.units.get(signal, "")
        return (
            f"{self.signals[signal]:g} {unit}".rstrip()
            if isinstance(self.signals[signal], float)
            else f"{self.signals[signal]} {unit}".rstrip()
        )

    def __str__(self) -> str:
        return f"{self.message}: " + " ".join(f"{name}={self.text(name)}" for name in self.signals)


def load(path: str | os.PathLike) -> Any:
    """A cantools database from ``path``; errors name the file and what is wrong with it."""
    try:
        import cantools
    except ImportError:
        raise ImportError(
            "decoding CAN frames needs cantools: pip install 'jumpstarter-jupyter[can]'"
        ) from None
    try:
        return cantools.database.load_file(os.fspath(path))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such CAN database file") from None
    except Exception as exc:  # cantools raises parser-specific errors: one message for all
        raise ValueError(f"{path}: not a CAN database cantools can read: {exc}") from None


def decode(db: Any, msg: can.Message) -> Decoded | None:
    """``msg`` decoded with ``db``; None for a frame the database does not describe or a remote frame."""
    if msg.is_remote_frame or msg.is_error_frame:
        return None
    try:
        spec = db.get_message_by_frame_id(msg.arbitration_id)
    except KeyError:
        return None
    if spec.is_extended_frame != msg.is_extended_id:
        return None
    values = spec.decode(bytes(msg.data), decode_choices=False, allow_truncated=True)
    units = {s.name: s.unit for s in spec.signals if s.unit and s.name in values}
    choices = {
        s.name: str(s.choices[values[s.name]])
        for s in spec.signals
        if s.choices and s.name in values and values[s.name] in s.choices
    }
    # scaled values as a person writes them: 2.9, not 2.9000000000000004
    numbers = {name: round(v, 9) if isinstance(v, float) else v for name, v in values.items()}
    return Decoded(spec.name, numbers, units, choices)


def frame_id(db: Any, message: str) -> int:
    """The frame ID of ``message``; a ValueError names the messages the database has."""
    try:
        return db.get_message_by_name(message).frame_id
    except KeyError:
        names = ", ".join(m.name for m in db.messages)
        raise ValueError(f"no message {message!r} in the CAN database (it has: {names})") from None


def signal_test(db: Any, message: str, signal: str, value: Any) -> SignalTest:
    """A check of ``signal``'s value: equal to a number, to a value's name, or a predicate."""
    names = [s.name for s in db.get_message_by_name(message).signals]
    if signal not in names:
        raise ValueError(f"message {message!r} has no signal {signal!r} (it has: {', '.join(names)})")
    if callable(value):
        return lambda decoded: bool(value(decoded[signal]))
    if isinstance(value, str):
        return lambda decoded: decoded.text(signal) == value
    return lambda decoded: decoded[signal] == value


def signal_list(db: Any) -> list[dict]:
    """Every message with its signals and units, for a widget's signal picker."""
    return [
        {
            "name": m.name,
            "id": m.frame_id,
            "signals": [{"name": s.name, "unit": s.unit or ""} for s in m.signals],
        }
        for m in db.messages
        if m.signals
    ]
