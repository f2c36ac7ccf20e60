"""Resolve a config's ``type:`` name to a driver class, and find the drivers' own commands."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from jumpstarter_jupyter.driver.base import Driver

# Clients import this package too (every client class lives under drivers/), and connect()
# must stay quick: what only resolving a config needs (entry points, the driver base with
# its decompressors, difflib) is imported when a config is resolved.

ENTRY_POINT_GROUP = "jumpstarter_jupyter.drivers"
COMMAND_GROUP = "jumpstarter_jupyter.commands"  # ``name = "package.module:command"``: a click command
_names: dict[str, str] = {}
_commands: dict[str, str] = {}


def register_table(*tables: dict[str, str]) -> None:
    """Add ``{type name: import path}`` tables; a name registered twice is an error."""
    for table in tables:
        for name, target in table.items():
            if name in _names and _names[name] != target:
                raise RuntimeError(f"driver type {name!r} registered twice: {_names[name]} and {target}")
            _names[name] = target


def register_commands(table: dict[str, str]) -> None:
    """Add ``{command name: "module:attribute"}`` top-level commands of drivers."""
    for name, target in table.items():
        if name in _commands and _commands[name] != target:
            raise RuntimeError(f"command {name!r} registered twice: {_commands[name]} and {target}")
        _commands[name] = target


def command_names() -> list[str]:
    """The drivers' top-level commands: ours, and those of the ``jumpstarter_jupyter.commands``
    entry-point group (a driver package from another project adds its own there)."""
    return sorted({*_commands, *_command_entry_points()})


def load_command(name: str) -> click.Command | None:
    """The click command registered as ``name`` (imported now), or None."""
    target = _commands.get(name) or _command_entry_points().get(name)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module_name), attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"command {name!r} ({target}) is not a click command")
    return command


def _command_entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=COMMAND_GROUP)}


def known_names() -> list[str]:
    """Every type name that resolves without an import path of its own."""
    return sorted({*_names, *_entry_points()})


def is_registered(name: str) -> bool:
    """Is ``name`` one of our type names (the tables, or the entry-point group)?"""
    return name in _names or name in _entry_points()


def entry_point_packages() -> set[str]:
    """Top-level packages that register drivers in the entry-point group (installed, so trusted)."""
    return {target.partition(".")[0] for target in _entry_points().values()}


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value.replace(":", ".") for ep in entry_points(group=ENTRY_POINT_GROUP)}


def resolve(name: str, error: Callable[[str], Exception]) -> type[Driver]:
    """Return the driver class for ``name``; ``error(message)`` builds the exception to raise."""
    from jumpstarter_jupyter.driver.base import Driver

    target = _names.get(name) or _entry_points().get(name) or name
    module_name, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr) if module_name else None
    except ImportError as exc:
        registered = target != name
        if registered or (exc.name and not module_name.startswith(exc.name)):
            raise error(f"cannot import driver type {name!r} ({target}): {exc}") from None
        cls = None
    except AttributeError:
        cls = None
    except TypeError as exc:  # protobuf: upstream's generated stubs register the names ours did
        if "descriptor pool" not in str(exc):
            raise
        raise error(
            f"{name!r} is built on upstream Jumpstarter, which cannot load beside our exporter; "
            "add `hosted: true` to its entry to run it in upstream's Python"
        ) from None
    if cls is None:
        import difflib

        close = difflib.get_close_matches(name, known_names(), n=3, cutoff=0.5)
        hint = (
            f"; did you mean {' or '.join(close)}?" if close else f"; known types: {', '.join(known_names())}"
        )
        raise error(f"unknown driver type {name!r}{hint}")
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise error(
            f"{name!r} is not a driver class (a subclass of jumpstarter_jupyter.driver.Driver); "
            "for a driver built on upstream Jumpstarter, add `hosted: true` to its entry"
        )
    if cls.__abstractmethods__:
        raise error(f"{cls.__qualname__} does not implement {_unimplemented(cls)}")
    return cls


def _unimplemented(cls: type) -> str:
    """``PowerInterface.on, PowerInterface.state``: the abstract methods ``cls`` leaves out."""

    def declared_by(name: str) -> str:
        owner = next(k for k in cls.__mro__ if getattr(vars(k).get(name), "__isabstractmethod__", False))
        return f"{owner.__qualname__}.{name}"

    return ", ".join(declared_by(name) for name in sorted(cls.__abstractmethods__))
