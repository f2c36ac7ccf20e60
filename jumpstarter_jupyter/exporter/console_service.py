"""Our ConsoleService: follow a console (scrollback replay plus live bytes, with dropped
counts) and transmit to it with acknowledgements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from jumpstarter_jupyter.driver.console import ConsoleDriver
from jumpstarter_jupyter.exporter.dispatch import Dispatcher, Refused
from jumpstarter_jupyter.exporter.leases import Leases
from jumpstarter_jupyter.exporter.report import Node, Tree
from jumpstarter_jupyter.protocol.metadata import CONSOLE_RESTARTED
from jumpstarter_jupyter.protocol.v1 import console_pb2, console_pb2_grpc


class ConsoleServicer(console_pb2_grpc.ConsoleServiceServicer):
    """Our console streams: follow (scrollback replay plus live bytes, with dropped counts) and
    acknowledged transmit."""

    def __init__(self, tree: Tree, leases: Leases):
        self.dispatch = Dispatcher(tree, leases)

    async def Follow(self, request, context):
        try:
            console = _console_driver(self.dispatch.node(request.uuid)).console
        except Refused as refused:
            await refused.abort(context)
        epoch = self.dispatch.tree.uuid
        start = None if request.offset < 0 else request.offset
        if request.epoch and request.epoch != epoch:  # an offset of an earlier run means nothing here
            yield console_pb2.ConsoleChunk(offset=0, event=CONSOLE_RESTARTED, epoch=epoch)
            start = None
        first = True
        async for chunk in console.follow_async(start, from_end=request.from_end, snapshot=request.snapshot):
            yield console_pb2.ConsoleChunk(
                offset=chunk.offset,
                data=chunk.data,
                dropped=chunk.dropped,
                event=chunk.event,
                epoch=epoch if first else "",
            )
            first = False

    async def Transmit(self, request_iterator, context):
        try:
            async for ack in _console_transmit(self.dispatch, request_iterator, context):
                yield ack
        except Refused as refused:
            await refused.abort(context)


async def _console_transmit(
    dispatch: Dispatcher, requests, context
) -> AsyncIterator[console_pb2.TransmitAck]:
    """Write each request's bytes to the console's port, acknowledging the total after each."""
    first = await anext(aiter(requests), None)
    if first is None:
        return
    node = dispatch.node(first.uuid)
    write = _console_driver(node).write
    # console input is control: the lease holder's
    with dispatch.controlling(context, node, f"{node.path or 'root'} console input"):
        written = 0
        await context.send_initial_metadata(())
        async for request in _with_first(first, requests):
            if request.data:
                try:
                    await asyncio.to_thread(write, request.data)  # a port write blocks at the baud rate
                except Exception as exc:
                    raise Refused.of(exc, node.path) from None
                written += len(request.data)
                yield console_pb2.TransmitAck(written=written)


def _console_driver(node: Node) -> ConsoleDriver:
    if not isinstance(node.driver, ConsoleDriver):
        raise Refused(
            grpc.StatusCode.NOT_FOUND,
            f"driver {node.path or 'root'} has no console",
            "AttributeError",
            node.path,
        )
    return node.driver


async def _with_first(first, rest) -> AsyncIterator:
    yield first
    async for item in rest:
        yield item
