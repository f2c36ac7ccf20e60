"""Upstream's RouterService: byte streams of drivers (``kind: driver``) and resource transfers
(``kind: resource``), named by the ``request`` metadata. StreamService serves the same streams
with acknowledgements (``stream_service``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import grpc

from jumpstarter_jupyter.driver.base import STREAM, ExportedMethod
from jumpstarter_jupyter.driver.resources import ENCODINGS
from jumpstarter_jupyter.driver.streams import ThreadedStream, is_async_stream
from jumpstarter_jupyter.exporter.bulk import BulkListener
from jumpstarter_jupyter.exporter.calls import Calls
from jumpstarter_jupyter.exporter.dispatch import Dispatcher, Refused, call_name
from jumpstarter_jupyter.exporter.leases import Leases
from jumpstarter_jupyter.exporter.report import Node, Tree
from jumpstarter_jupyter.protocol.frames import decode_request
from jumpstarter_jupyter.protocol.metadata import (
    ACCEPT_ENCODING_KEY,
    BULK_KEY,
    CONTENT_ENCODING_KEY,
    REQUEST_KEY,
    RESOURCE_KEY,
)
from jumpstarter_jupyter.protocol.v1 import router_pb2, router_pb2_grpc

if TYPE_CHECKING:
    from jumpstarter_jupyter.exporter.stream_service import Acknowledgements

GOAWAY = router_pb2.StreamResponse(frame_type=router_pb2.FRAME_TYPE_GOAWAY)
SERVICE = "jumpstarter.v1.RouterService"


class RouterServicer(router_pb2_grpc.RouterServiceServicer):
    """Byte streams (``kind: driver``) and resource transfers (``kind: resource``)."""

    def __init__(self, tree: Tree, calls: Calls, leases: Leases, bulk: BulkListener | None = None):
        self.dispatch, self.calls, self.bulk = Dispatcher(tree, leases), calls, bulk

    async def Stream(self, request_iterator, context):
        try:
            async for data in self.serve(_router_payloads(request_iterator), context, None):
                yield GOAWAY if data is None else router_pb2.StreamResponse(payload=data)
        except Refused as refused:
            await refused.abort(context)

    async def serve(
        self, incoming: AsyncIterator[bytes], context, acks: Acknowledgements | None
    ) -> AsyncIterator[bytes | None]:
        """The stream the ``request`` metadata names: the driver's bytes, then ``None`` (GOAWAY)."""
        request = _stream_request(context)
        if request.get("kind") == "resource":
            node = self.dispatch.node(str(request.get("uuid")))
            relay = getattr(
                node.driver, "forward_resource", None
            )  # a hosted driver's resources are its process's
            readonly, responses = (
                False,
                (
                    relay(request, _as_bytes(incoming), context)
                    if relay
                    else self._resource(node, request, incoming, context, acks)
                ),
            )
            what = f"{node.path or 'root'} resource stream"
        else:
            uuid, name = str(request.get("uuid")), request.get("method") or "connect"
            node, method = self.dispatch.method(uuid, name, STREAM)
            streamed = self._driver_stream(node, method, _as_bytes(incoming), context, acks)
            readonly, responses = method.readonly, streamed
            what = call_name(node, method)
        with self.dispatch.controlling(context, node, what, readonly):
            async for data in responses:
                yield data

    async def _driver_stream(
        self, node: Node, method: ExportedMethod, incoming, context, acks: Acknowledgements | None
    ) -> AsyncIterator[bytes | None]:
        try:
            stream = await self.calls.call(method, node.driver, [], call_name(node, method))
        except Exception as exc:
            raise Refused.of(exc, node.path) from None
        if not is_async_stream(stream):
            stream = ThreadedStream(stream, self.calls.run)
        pump = None
        try:
            await context.send_initial_metadata(())
            pump = asyncio.ensure_future(_pump(incoming, stream.send, stream.send_eof, acks))
            while data := await stream.receive():
                yield data
            yield None
            await pump
            await _until_cancelled()
        finally:
            if pump is not None:
                pump.cancel()
            stream.close()

    async def _resource(
        self, node: Node, request: dict, incoming, context, acks: Acknowledgements | None
    ) -> AsyncIterator[bytes | None]:
        encoding = request.get(CONTENT_ENCODING_KEY)
        channel = node.driver.resources.register(encoding)
        accepted = encoding if encoding in ENCODINGS else ""
        asked = self.bulk is not None and dict(context.invocation_metadata()).get(BULK_KEY) == "1"
        offer = self.bulk.offer(channel) if asked else None
        pump = None
        try:
            await context.send_initial_metadata(
                ((RESOURCE_KEY, json.dumps(channel.handle())), (ACCEPT_ENCODING_KEY, accepted))
                + (((BULK_KEY, json.dumps(offer)),) if offer else ())
            )
            pump = asyncio.ensure_future(
                _pump(incoming, channel.inbound.put_async, channel.end_of_input, acks)
            )
            while (data := await channel.outbound.get_async()) is not None:
                yield data
            yield None
            await pump
            node.driver.resources.forget(channel)
            await _until_cancelled()
        finally:
            if pump is not None:
                pump.cancel()
            channel.abort()
            node.driver.resources.forget(channel)
            if offer:
                self.bulk.withdraw(offer)


def add_router_to_server(router: RouterServicer, server: grpc.aio.Server) -> None:
    """Serve ``router`` as the generated ``add_RouterServiceServicer_to_server`` does, except that a
    data frame arrives as a view of its payload (``frames.decode_request``), not a parsed copy."""
    handlers = {
        "Stream": grpc.stream_stream_rpc_method_handler(
            router.Stream,
            request_deserializer=decode_request,
            response_serializer=router_pb2.StreamResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def _stream_request(context) -> dict:
    raw = dict(context.invocation_metadata()).get(REQUEST_KEY)
    try:
        request = json.loads(raw) if raw else None
    except ValueError:
        request = None
    if (
        not isinstance(request, dict)
        or request.get("kind") not in ("driver", "resource")
        or "uuid" not in request
    ):
        expected = '{"kind": "driver"|"resource", "uuid": ..., ...}'
        raise Refused(
            grpc.StatusCode.UNKNOWN,
            "Unexpected <class 'ValidationError'>: invalid `request` "
            f"metadata {raw!r}: expected JSON {expected}",
            "ValidationError",
            "",
        )
    return request


async def _until_cancelled() -> None:
    """Keep a finished stream open until the client cancels it, as upstream's exporter does.

    Ending it with OK is tolerated by upstream clients, but upstream's `jmp shell` traces
    show CANCELLED for every stream, and peers compare them. Waiting costs nothing: grpc
    cancels this task when the client does.
    """
    await asyncio.get_running_loop().create_future()


async def _router_payloads(frames) -> AsyncIterator[memoryview | bytes]:
    """Data of RouterService frames until GOAWAY or half-close (a data frame comes as a view)."""
    async for frame in frames:
        if isinstance(frame, memoryview):
            yield frame
            continue
        if frame.frame_type == router_pb2.FRAME_TYPE_GOAWAY:
            return
        if frame.frame_type == router_pb2.FRAME_TYPE_DATA and frame.payload:
            yield frame.payload


async def _as_bytes(incoming: AsyncIterator[memoryview | bytes]) -> AsyncIterator[bytes]:
    """The payloads as bytes: for drivers and relays, which only resource channels spare the copy."""
    async for data in incoming:
        yield bytes(data)


async def _pump(
    incoming: AsyncIterator[bytes],
    write: Callable[[bytes], Awaitable],
    write_eof: Callable[[], Awaitable],
    acks: Acknowledgements | None,
) -> None:
    """Copy client bytes to ``write`` (counting them in ``acks``) until the client's EOF, then
    ``write_eof``. A driver that refuses bytes ends the copy: ``acks`` says why."""
    try:
        async for data in incoming:
            try:
                await write(data)
            except Exception as exc:
                if acks is not None:
                    acks.failed(f"the driver took no more bytes: {str(exc) or type(exc).__name__}")
                raise
            if acks is not None:
                acks.taken(len(data))
    except asyncio.CancelledError:
        raise
    except Exception:  # the client's side broke, or the driver's: both mean EOF here
        pass
    await write_eof()
