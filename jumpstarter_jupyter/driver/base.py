"""The driver base class and the ``@export`` / ``@exportstream`` markers.

A driver is a dataclass whose fields are its YAML ``config``, plus small exported methods
returning plain data::

    @dataclass
    class MockPower(Driver):
        client = "jumpstarter_jupyter.drivers.power.client.PowerClient"

        @export
        def on(self) -> None:
            self.logger.info("power on")

Kinds of exported method, each reached through its own RPC:

* ``call``: a plain method (``DriverCall``);
* ``streaming``: a generator yielding values (``StreamingDriverCall``);
* ``stream``: returns a :class:`~jumpstarter_jupyter.driver.streams.ByteStream` (``RouterService.Stream``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, ClassVar

from jumpstarter_jupyter.driver.resources import ResourceFile, Resources

MARK = "_jmp_export_kind"
CALL, STREAMING, STREAM = "call", "streaming", "stream"


def export(func: Callable) -> Callable:
    """Export a method: unary, or server-streaming when it is a generator function."""
    _check_function(func, "@export")
    setattr(func, MARK, STREAMING if inspect.isgeneratorfunction(func) else CALL)
    return func


def exportstream(func: Callable) -> Callable:
    """Export a method returning a byte stream (opened through ``RouterService.Stream``)."""
    _check_function(func, "@exportstream")
    if inspect.isgeneratorfunction(func):
        raise TypeError(f"@exportstream {func.__qualname__}: must return a ByteStream, not yield")
    setattr(func, MARK, STREAM)
    return func


def _check_function(func: Any, decorator: str) -> None:
    if not inspect.isfunction(func):
        raise TypeError(f"{decorator} takes a plain method, got {type(func).__name__} {func!r}")
    if func.__name__.startswith("_"):
        raise TypeError(f"{decorator} {func.__qualname__}: private methods cannot be exported")
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(f"{decorator} {func.__qualname__}: drivers are synchronous; use a plain def")


class ExportedMethod:
    """One exported method of a driver class: its kind, signature and parameter types."""

    def __init__(self, func: Callable, kind: str):
        self.func, self.kind, self.name = func, kind, func.__name__
        self.signature = inspect.signature(func)
        try:
            hints = typing.get_type_hints(func)
        except Exception:  # unresolvable annotations: take arguments as they come
            hints = {}
        self.params = [p for p in self.signature.parameters.values() if p.name != "self"]
        self.hints = {p.name: hints.get(p.name, Any) for p in self.params}
        self.doc = inspect.getdoc(func) or ""

    def describe(self) -> dict:
        """Plain data for the report, so generic clients and widgets can offer the method."""
        return {
            "name": self.name,
            "kind": self.kind,
            "params": [_describe_param(p) for p in self.params],
            "doc": self.doc.split("\n\n")[0],
        }


def _describe_param(param: inspect.Parameter) -> dict:
    out: dict[str, Any] = {"name": param.name}
    if param.annotation is not inspect.Parameter.empty:
        ann = param.annotation
        out["type"] = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    if param.default is not inspect.Parameter.empty:
        default = param.default
        out["default"] = default if isinstance(default, (int, float, str, bool, type(None))) else repr(default)
    return out


class Driver:
    """Base of every driver. Subclasses are dataclasses; their fields are the YAML ``config``.

    Class attributes:
        client: dotted path of our client class.
        upstream_client: the client class upstream Jumpstarter should use
            (reported in ``jumpstarter.dev/client``); defaults to ``client``.
    """

    client: ClassVar[str] = "jumpstarter_jupyter.client.generic.GenericClient"
    upstream_client: ClassVar[str | None] = None
    exports: ClassVar[MappingProxyType] = MappingProxyType({})

    children: dict[str, Driver] = MappingProxyType({})  # type: ignore[assignment]
    description: str | None = None
    methods_description: dict[str, str] = MappingProxyType({})  # type: ignore[assignment]
    labels: dict[str, str] = MappingProxyType({})  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                kind = getattr(value, MARK, None)
                if kind is not None:
                    found[name] = ExportedMethod(value, kind)
                elif name in found:  # overridden without the marker: no longer exported
                    del found[name]
        cls.exports = MappingProxyType(found)

    @functools.cached_property
    def logger(self) -> logging.Logger:
        """The driver's logger (``driver.<Class>``): its records reach ``LogStream``."""
        # cached: drivers log on every call, and getLogger takes the logging module's lock
        return logging.getLogger(f"driver.{type(self).__name__}")

    @property
    def resources(self) -> Resources:
        """Client byte channels registered for this driver (resource streams)."""
        if "_resources" not in self.__dict__:
            self.__dict__["_resources"] = Resources()
        return self.__dict__["_resources"]

    @contextmanager
    def resource(self, handle: dict) -> Iterator[ResourceFile]:
        """Open the client resource named by ``handle`` (an argument a client passed)."""
        with self.resources.open(handle) as file:
            yield file

    def shutdown(self) -> None:
        """Release hardware and threads; called once when the exporter stops.

        The default shuts the children down; overrides call ``super().shutdown()``. (Not
        ``close``: upstream's PySerial exports a wire method of that name.)
        """
        for child in self.children.values():
            child.shutdown()

    def walk(self, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Driver]]:
        """Yield ``(path, driver)`` for this driver and its subtree, depth first, pre-order."""
        yield path, self
        for name, child in self.children.items():
            yield from child.walk((*path, name))
