"""Driver classes made at start-up: one per hosted upstream driver, and one per failed driver.

A hosted driver's class exports what the upstream driver exports (names, signatures and
docstrings read in the hosted process), each method forwarding to that process, so our
exporter's dispatch, leases, cancellation, report and generic client treat it as any driver.
A failed driver's class exports the same methods, each answering with the error that stopped
its device from opening.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from types import MappingProxyType
from typing import Any

from jumpstarter_jupyter.driver.base import CALL, MARK, STREAM, STREAMING, Driver, ExportOptions
from jumpstarter_jupyter.driver.streams import SocketStream
from jumpstarter_jupyter.hosted.process import HostedProcess
from jumpstarter_jupyter.protocol.metadata import CLIENT_LABEL, FAILED_LABEL, HOSTED_LABEL, NAME_LABEL

log = logging.getLogger("jumpstarter_jupyter.hosted")

GENERIC_CLIENT = "jumpstarter_jupyter.client.generic.GenericClient"


class DriverFailed(RuntimeError):
    """The driver's device could not be opened when the exporter started."""


class StandIn(Driver):
    """A driver standing for one that is not in this process: a hosted or a failed one."""

    stops: HostedProcess | None = None  # set on a hosted entry: its teardown ends the process

    def teardown(self) -> None:
        super().teardown()
        if self.stops is not None:
            self.stops.stop()


class HostedDriver(StandIn):
    """Base of the classes made for hosted drivers: calls go to the hosted process."""

    host: HostedProcess
    hosted_path: str

    def __init__(self, host: HostedProcess, path: str, node: dict):
        self.host, self.hosted_path = host, path
        self.description = node.get("description")
        self.methods_description = node.get("methods_description") or {}
        self.labels = {**_own_labels(node.get("labels") or {}), HOSTED_LABEL: node["type"]}
        self.children = {}

    async def forward_resource(
        self, request: dict, incoming: AsyncIterator[bytes], context
    ) -> AsyncIterator[bytes | None]:
        """A client resource stream, relayed to the hosted driver (its handle is the process's)."""
        stream = self.host.open_stream(self.hosted_path, request)
        metadata = await stream.call.initial_metadata()
        await context.send_initial_metadata(
            tuple((key, value) for key, value in metadata if key in ("resource", "x_jmp_accept_encoding"))
        )

        async def pump() -> None:
            async for data in incoming:
                await stream.send(data)
            await stream.send_eof()

        pumping = asyncio.ensure_future(pump())
        try:
            while data := await stream.receive():
                yield data
            yield None
            await pumping
            await asyncio.get_running_loop().create_future()  # open until the client cancels, as upstream
        finally:
            pumping.cancel()
            stream.close()


class FailedDriver(StandIn):
    """Base of the classes made for drivers whose device could not be opened."""

    def __init__(self, error: str, labels: dict[str, str] | None = None):
        self.error = error
        self.labels = {**(labels or {}), FAILED_LABEL: error}
        self.children = {}


def hosted_class(node: dict, readonly: set[str], our_client: str | None) -> type[HostedDriver]:
    """The class of one hosted driver, named and reported as upstream's type."""

    def forward(described: dict) -> Callable:
        name = described["name"]
        if described["kind"] == STREAMING:

            async def method(self: HostedDriver, *args: Any) -> AsyncIterator[Any]:
                async for item in self.host.items(self.hosted_path, name, args):
                    yield item
        elif described["kind"] == STREAM:

            async def method(self: HostedDriver) -> SocketStream:
                return await self.host.open_byte_stream(self.hosted_path, name)
        else:

            async def method(self: HostedDriver, *args: Any) -> Any:
                return await self.host.call(self.hosted_path, name, args)

        return method

    return _exporting(HostedDriver, node, readonly, our_client, forward)


def failed_class(
    type_name: str, upstream_client: str, methods: list[dict], our_client: str | None
) -> type[FailedDriver]:
    """The class of a failed driver: its methods as the driver's, each raising its error."""

    def forward(described: dict) -> Callable:
        if described["kind"] == STREAMING:

            async def method(self: FailedDriver, *args: Any) -> AsyncIterator[Any]:
                raise DriverFailed(self.error)
                yield  # an async generator, as the method it stands for
        else:

            async def method(self: FailedDriver, *args: Any) -> Any:
                raise DriverFailed(self.error)

        return method

    node = {"type": type_name, "client": upstream_client, "methods": methods}
    return _exporting(FailedDriver, node, set(), our_client, forward)


def failed_driver(cls: type[Driver], exc: BaseException) -> FailedDriver:
    """A driver of ours whose device could not be opened: its methods answer with ``exc``."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    error = f"{type(exc).__name__}: {exc}"
    log.error("%s failed: %s; the rest of the tree serves", name, error)
    described = [method.describe() for method in cls.exports.values()]
    return failed_class(name, cls.upstream_client or cls.client, described, cls.client)(error)


def _exporting(
    base: type[Driver],
    node: dict,
    readonly: set[str],
    our_client: str | None,
    forward: Callable[[dict], Callable],
) -> type:
    namespace: dict[str, Any] = {"client": our_client or GENERIC_CLIENT, "upstream_client": node["client"]}
    for described in node["methods"]:
        method = forward(described)
        method.__name__ = method.__qualname__ = described["name"]
        method.__doc__ = described.get("doc") or None
        method.__signature__ = _signature(described)
        setattr(
            method,
            MARK,
            ExportOptions(
                described["kind"] if described["kind"] in (CALL, STREAMING, STREAM) else CALL,
                described["name"] in readonly,
                private=True,
            ),
        )
        namespace[f"_hosted_{described['name']}"] = method  # never shadows the base class's attributes
    module, _, name = node["type"].rpartition(".")
    namespace["__module__"], namespace["__qualname__"] = module, name
    cls = type(name, (base,), namespace)
    cls.exports = MappingProxyType({method.name: method for method in cls.exports.values()})
    return cls


def _signature(described: dict) -> inspect.Signature:
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for param in described.get("params", []):
        kind = getattr(inspect.Parameter, param.get("kind", "POSITIONAL_OR_KEYWORD"))
        params.append(
            inspect.Parameter(
                param["name"],
                kind,
                annotation=param.get("type", inspect.Parameter.empty),
                default=param.get("default", inspect.Parameter.empty),
            )
        )
    try:
        return inspect.Signature(params, return_annotation=described.get("returns", inspect.Signature.empty))
    except ValueError:  # an order the Signature class refuses: take arguments as they come
        return inspect.Signature([params[0], inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)])


def _own_labels(labels: dict[str, str]) -> dict[str, str]:
    """Upstream's labels of a driver, without those our report sets itself."""
    return {key: value for key, value in labels.items() if key not in (CLIENT_LABEL, NAME_LABEL)}
