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

* ``call``: a method returning a value (``DriverCall``);
* ``streaming``: a generator yielding values (``StreamingDriverCall``);
* ``stream``: returns a :class:`~jumpstarter_jupyter.driver.streams.ByteStream` (``RouterService.Stream``).

Each may be a plain function (run on one of the exporter's worker threads; it sees
cancellation through :meth:`Driver.cancelled`) or a coroutine / async generator (run on the
exporter's event loop, cancelled when its caller goes away). A method that waits for the
hardware should be ``async`` or wait through :class:`~jumpstarter_jupyter.driver.sync.Signal`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import typing
from abc import ABC
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from jumpstarter_jupyter.driver.cancel import current_token
from jumpstarter_jupyter.driver.resources import ResourceFile, Resources

MARK = "_jmp_export"
RUNTIME = "jumpstarter_jupyter.runtime"  # dataclass field metadata: see runtime()
CALL, STREAMING, STREAM = "call", "streaming", "stream"
# driver lifecycle names: an exported method of these names would be called at the wrong time
LIFECYCLE = frozenset({"teardown"})


@dataclass(frozen=True)
class ExportOptions:
    kind: str
    readonly: bool | None = None  # None: as the overridden method says (False if none)
    private: bool = False


def export(func: Callable | None = None, *, readonly: bool | None = None, private: bool = False) -> Callable:
    """Export a method: unary, or server-streaming when it is a generator.

    Plain methods run on the exporter's worker threads and see cancellation through
    :meth:`Driver.cancelled`; ``async def`` methods and async generators run on its event
    loop and are cancelled like any coroutine. Options:

    * ``readonly=True``: the method only observes (reads, waits, watches): a client that
      watches a board without holding it may call it. An override keeps the overridden
      method's setting unless it gives its own.
    * ``private=True``: put an underscore name on the wire on purpose (upstream drivers
      export some, e.g. CAN's ``_recv_internal``); other underscore names never are.

    Use it bare (``@export``) or with options (``@export(readonly=True)``).
    """

    def mark(func: Callable) -> Callable:
        _check_function(func, "@export", private)
        streaming = inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)
        setattr(func, MARK, ExportOptions(STREAMING if streaming else CALL, readonly, private))
        return func

    return mark if func is None else mark(func)


def exportstream(func: Callable | None = None, *, readonly: bool | None = None) -> Callable:
    """Export a method returning a byte stream (opened through ``RouterService.Stream``).

    The method may be plain or ``async def``; the stream it returns is a
    :class:`~jumpstarter_jupyter.driver.streams.ByteStream`.
    """

    def mark(func: Callable) -> Callable:
        _check_function(func, "@exportstream", False)
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(f"@exportstream {func.__qualname__}: must return a ByteStream, not yield")
        setattr(func, MARK, ExportOptions(STREAM, readonly))
        return func

    return mark if func is None else mark(func)


def _check_function(func: Any, decorator: str, private: bool) -> None:
    if not inspect.isfunction(func):
        raise TypeError(f"{decorator} takes a plain method, got {type(func).__name__} {func!r}")
    name = func.__name__
    if name.startswith("__"):
        raise TypeError(f"{decorator} {func.__qualname__}: dunder methods cannot be exported")
    if name.startswith("_") and not private:
        raise TypeError(
            f"{decorator} {func.__qualname__}: private methods are not exported; "
            "use @export(private=True) to put this underscore name on the wire"
        )
    if name in LIFECYCLE:
        raise TypeError(f"{decorator} {func.__qualname__}: {name!r} is the driver lifecycle method")


class ExportedMethod:
    """One exported method of a driver class: its kind, signature and parameter types."""

    def __init__(self, func: Callable, options: ExportOptions, overridden: ExportedMethod | None = None):
        self.func, self.name = func, func.__name__
        self.kind = options.kind
        inherited = overridden.readonly if overridden is not None else False
        self.readonly = inherited if options.readonly is None else options.readonly
        self.is_async = inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
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
        described = {
            "name": self.name,
            "kind": self.kind,
            "readonly": self.readonly,
            "params": [_describe_param(p) for p in self.params],
            "doc": self.doc.split("\n\n")[0],
        }
        returns = self.signature.return_annotation
        if returns is not inspect.Signature.empty:
            described["returns"] = (
                returns if isinstance(returns, str) else getattr(returns, "__name__", str(returns))
            )
        return described


def _describe_param(param: inspect.Parameter) -> dict:
    out: dict[str, Any] = {"name": param.name}
    if param.annotation is not inspect.Parameter.empty:
        ann = param.annotation
        out["type"] = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    if param.default is not inspect.Parameter.empty:
        default = param.default
        out["default"] = (
            default if isinstance(default, (int, float, str, bool, type(None))) else repr(default)
        )
    return out


def runtime(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A driver field that is not configuration: state the driver changes as it runs (a mock's
    power state) or an object its parent passes in code (a board's machine, a lock).

    The constructor takes it; a config file that sets it is refused, naming the field::

        @dataclass
        class MockPower(PowerInterface):
            voltage: float = 5.0            # config
            powered: bool = runtime(False)  # state
    """
    return dataclasses.field(
        default=default, default_factory=default_factory, repr=False, metadata={RUNTIME: True}
    )


class Driver(ABC):  # noqa: B024 - abstract so that interfaces' @abstractmethod methods are enforced
    """Base of every driver. Subclasses are dataclasses; their fields are the YAML ``config``
    (except ``runtime()`` fields). An interface marks the methods every driver of it must
    implement ``@abstractmethod``: a class leaving one out cannot be built (a config naming it
    is refused when it loads).

    Its class attributes name its clients: ``client``, the dotted path of our client class;
    ``upstream_client``, the client class upstream Jumpstarter should use (reported in
    ``jumpstarter.dev/client``; defaults to ``client``).
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
                options = getattr(value, MARK, None)
                if options is not None:
                    found[name] = ExportedMethod(value, options, found.get(name))
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

    def teardown(self) -> None:
        """Release hardware and threads; called once when the exporter stops.

        The default tears the children down; overrides call ``super().teardown()``. (Not
        ``close`` or ``shutdown``: upstream's PySerial and CAN drivers export wire methods
        of those names.)
        """
        for child in self.children.values():
            child.teardown()

    def check_children(self) -> None:  # noqa: B027 - a hook: most drivers take any children
        """Raise ``ValueError`` or ``TypeError`` naming what is wrong when ``children`` do not fit.

        The config loader calls it once a YAML entry's children are set, so a missing or wrong
        child stops the exporter at start; the default accepts any children.
        """

    def cancelled(self) -> bool:
        """True once the caller of the exported call running now has gone away.

        Long work in a plain (sync) method checks it and stops; outside an exported call it
        is always False. ``async def`` methods are cancelled instead.
        """
        return current_token().cancelled

    def sleep(self, seconds: float) -> None:
        """Pause a plain method for ``seconds`` (a sampling period, a settle time).

        Raises :class:`~jumpstarter_jupyter.driver.cancel.Cancelled` as soon as the call is
        cancelled, so a sleeping method never outlives its caller.
        """
        token = current_token()
        token.wait(seconds)
        token.check()

    def walk(self, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Driver]]:
        """Yield ``(path, driver)`` for this driver and its subtree, depth first, pre-order."""
        yield path, self
        for name, child in self.children.items():
            yield from child.walk((*path, name))
