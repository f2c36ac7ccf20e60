"""Bind positional wire arguments to an exported method, converting by its type hints.

Numbers arrive as doubles and bytes as strings (the wire has nothing else), so an ``int``
parameter accepts ``3.0`` and a ``bytes`` parameter accepts text, as upstream's lax
validation does; ``Base64Bytes`` accepts base64 text. Objects become the dataclass or
``TypedDict`` the hint names (field by field, unknown keys ignored as pydantic does), and a
``tuple[int, str]`` converts element by element. Anything else that does not fit raises
``ValueError`` (INVALID_ARGUMENT) naming the parameter; a wrong count raises ``TypeError``.
"""

from __future__ import annotations

import binascii
import collections.abc
import dataclasses
import enum
import types
import typing
from typing import Annotated, Any

from jumpstarter_jupyter.driver.base import ExportedMethod
from jumpstarter_jupyter.protocol.codec import is_base64

SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence)


def bind(method: ExportedMethod, owner: str, args: list[Any]) -> list[Any]:
    """Return ``args`` converted for ``method``; ``owner`` names the driver class in errors."""
    params = method.params
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty]
    if len(args) < len(required) or (len(args) > len(positional) and not varargs):
        expected = (
            f"{len(required)}"
            if len(required) == len(positional)
            else f"{len(required)} to {len(positional)}"
        )
        raise TypeError(
            f"{owner}.{method.name}() takes {expected} argument{'s' * (expected != '1')} "
            f"({', '.join(p.name for p in positional) or 'none'}) but {len(args)} were given"
        )
    out = []
    for index, value in enumerate(args):
        param = positional[index] if index < len(positional) else None
        hint = method.hints.get(param.name, Any) if param else Any
        out.append(convert(value, hint, param.name if param else f"argument {index + 1}"))
    return out


def convert(value: Any, hint: Any, name: str) -> Any:
    """Convert one decoded wire value to ``hint``; raise ``ValueError`` naming ``name``."""
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return (
            _convert_base64(value, name)
            if is_base64(hint)
            else convert(value, typing.get_args(hint)[0], name)
        )
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(value, option, name)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"{name}: no type of {hint} fits {value!r}")
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise ValueError(f"{name}: expected one of {list(typing.get_args(hint))}, got {value!r}")
    if origin in SEQUENCES or hint in (list, tuple):
        return _convert_sequence(value, hint, origin or hint, name)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a mapping, got {_kind(value)} {value!r}")
        return value
    if dataclasses.is_dataclass(hint) or _is_typeddict(hint):
        return _convert_object(value, hint, name)
    if isinstance(hint, type):
        return _convert_scalar(value, hint, name)
    return value


def _convert_sequence(value: Any, hint: Any, kind: type, name: str) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"{name}: expected a list, got {_kind(value)} {value!r}")
    items = typing.get_args(hint)
    if kind is tuple and items and items[-1] is not Ellipsis:  # tuple[int, str]: one type per place
        if len(items) != len(value):
            raise ValueError(f"{name}: expected {len(items)} items, got {len(value)}: {value!r}")
        return tuple(
            convert(v, item, f"{name}[{i}]") for i, (v, item) in enumerate(zip(value, items, strict=False))
        )
    item = items[0] if items else Any
    converted = [convert(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
    return converted if kind in (list, collections.abc.Sequence) else kind(converted)


def _convert_object(value: Any, hint: type, name: str) -> Any:
    """A mapping into the dataclass or TypedDict ``hint``, each field by its own type."""
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a {hint.__name__} object, got {_kind(value)} {value!r}")
    hints = typing.get_type_hints(hint, include_extras=True)
    if _is_typeddict(hint):
        missing = sorted(hint.__required_keys__ - set(value))
        fields = {key: hints[key] for key in value if key in hints}
    else:
        required = [
            f.name
            for f in dataclasses.fields(hint)
            if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [key for key in required if key not in value]
        fields = {f.name: hints[f.name] for f in dataclasses.fields(hint) if f.init and f.name in value}
    if missing:
        raise ValueError(
            f"{name}: {hint.__name__} needs {', '.join(repr(m) for m in missing)}, got {value!r}"
        )
    converted = {key: convert(value[key], field, f"{name}.{key}") for key, field in fields.items()}
    return converted if _is_typeddict(hint) else hint(**converted)


def _is_typeddict(hint: Any) -> bool:
    # structural: typing_extensions' TypedDict (python-can's CanFilter) fails typing.is_typeddict
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__required_keys__")


def _convert_base64(value: Any, name: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return binascii.a2b_base64("".join(value.split()).encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            pass
    raise ValueError(f"{name}: expected base64 text, got {_kind(value)} {value!r}")


def _convert_scalar(value: Any, hint: type, name: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is bytes:
        if isinstance(value, str):
            return value.encode("utf-8")
    elif issubclass(hint, enum.Enum):
        try:
            return hint(int(value) if isinstance(value, float) and value.is_integer() else value)
        except ValueError:
            raise ValueError(f"{name}: expected one of {[m.value for m in hint]}, got {value!r}") from None
    elif isinstance(value, hint):
        return value
    else:
        return value  # a class we cannot check from plain data: let the driver judge
    raise ValueError(f"{name}: expected {hint.__name__}, got {_kind(value)} {value!r}")


def _kind(value: Any) -> str:
    return {
        float: "a number",
        str: "text",
        bool: "a boolean",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)
