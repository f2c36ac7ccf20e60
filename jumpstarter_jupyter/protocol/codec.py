"""Python values <-> ``google.protobuf.Value``, as upstream Jumpstarter encodes them.

Numbers travel as doubles (ints come back as floats), bytes as UTF-8 strings, and NaN or
infinity cannot travel at all. Encoding refuses what the peer could not decode, so the
caller learns it at the call site instead of from a remote stack trace.

Dataclasses travel as objects, field by field. A field typed :data:`Base64Bytes` travels as
base64 text, as upstream's pydantic ``Base64Bytes`` fields do (CAN frames' ``data``)::

    >>> @dataclasses.dataclass
    ... class Frame:
    ...     data: Base64Bytes
    >>> decode(encode(Frame(b"\\xde\\xad")))
    {'data': '3q0='}
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import functools
import math
import types
import typing
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Annotated, Any

from google.protobuf import struct_pb2


class EncodeError(ValueError):
    """A value cannot be represented on the wire."""


class Base64:
    """Marks ``bytes`` that travel as base64 text (see :data:`Base64Bytes`)."""

    def __repr__(self) -> str:
        return "Base64()"


BASE64 = Base64()
Base64Bytes = Annotated[bytes, BASE64]  # bytes on the wire as base64 text, e.g. a CAN frame's data


def encode(value: Any) -> struct_pb2.Value:
    """Encode one value into a new ``Value`` message."""
    out = struct_pb2.Value()
    _fill(out, value)
    return out


def decode(message: struct_pb2.Value) -> Any:
    """Decode a ``Value`` message; numbers come back as floats, NaN/Inf are refused."""
    kind = message.WhichOneof("kind")
    if kind == "number_value":
        number = message.number_value
        if not math.isfinite(number):
            raise ValueError(f"number {number} cannot travel as a Value (NaN or infinity)")
        return number
    if kind == "string_value":
        return message.string_value
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return {key: decode(item) for key, item in message.struct_value.fields.items()}
    if kind == "list_value":
        return [decode(item) for item in message.list_value.values]
    return None  # null_value, or unset (upstream treats an unset result as None)


def _fill(out: struct_pb2.Value, value: Any) -> None:
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, enum.Enum):
        _fill(out, value.value)
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise EncodeError(f"{value} cannot travel: the wire has no NaN or infinity")
        out.number_value = float(value)
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        try:
            out.string_value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodeError(
                f"bytes that are not UTF-8 cannot travel as a Value ({exc.reason} at byte {exc.start})"
            ) from None
    elif isinstance(value, Mapping):
        out.struct_value.SetInParent()
        fields = out.struct_value.fields
        for key, item in value.items():
            _fill(fields[_key(key)], item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        out.list_value.SetInParent()
        values = out.list_value.values
        for item in value:
            _fill(values.add(), item)
    else:
        _fill(out, _to_plain(value))


def _key(key: Any) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    return key if isinstance(key, str) else str(key)


def _to_plain(value: Any) -> Any:
    """JSON-mode conversions upstream applies (pydantic ``dump_python(mode="json")``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_base64 = _base64_fields(type(value))
        return {
            f.name: _base64(getattr(value, f.name)) if f.name in as_base64 else getattr(value, f.name)
            for f in dataclasses.fields(value)
        }
    if hasattr(value, "model_dump"):  # pydantic models, without importing pydantic
        return value.model_dump(mode="json")
    if isinstance(value, datetime.timedelta):
        return _iso_duration(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    raise EncodeError(f"a {type(value).__name__} cannot travel as a Value")


def is_base64(hint: Any) -> bool:
    """True for :data:`Base64Bytes` (optionally inside ``| None``)."""
    if typing.get_origin(hint) is Annotated:
        return any(isinstance(extra, Base64) for extra in typing.get_args(hint)[1:])
    return any(is_base64(option) for option in typing.get_args(hint)) if _is_union(hint) else False


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


@functools.cache
def _base64_fields(cls: type) -> frozenset[str]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return frozenset(name for name, hint in hints.items() if is_base64(hint))


def _base64(value: Any) -> Any:
    return (
        base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, (bytes, bytearray, memoryview))
        else value
    )


def _iso_duration(delta: datetime.timedelta) -> str:
    seconds = delta.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}P{int(days)}D" if days else f"{sign}P"
    time_part = "".join(f"{int(n)}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if secs or not (days or hours or minutes):
        time_part += f"{secs:g}S"
    return text + ("T" + time_part if time_part else "")
