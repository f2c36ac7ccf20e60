"""The router bridge (``controller_channel.carry``) against a real grpc.aio router and a real local
socket: a stream the router ends while local bytes are on their way ends quietly; a stream the
router fails raises how it failed.

A write racing the end of a router stream makes grpc.aio report INTERNAL ``Internal error from
Core`` for the call (it replaces the router's status); with a local side that never stops
writing, every stream here hits that race.
"""

from __future__ import annotations

import asyncio
import socket

import grpc

from jumpstarter_jupyter.aio_loop import run
from jumpstarter_jupyter.controller_channel import carry
from jumpstarter_jupyter.protocol.v1 import router_pb2_grpc

STREAMS = 30
DEADLINE = 60.0


class Router(router_pb2_grpc.RouterServiceServicer):
    """Ends each stream after its first frame: cleanly (the other side hung up) or with UNAVAILABLE."""

    def __init__(self, fail: bool):
        self.fail = fail

    async def Stream(self, request_iterator, context):
        await anext(aiter(request_iterator))
        if self.fail:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the router went away")


async def bridge(fail: bool, chatty: bool) -> list[str]:
    """Carry ``STREAMS`` local connections over the router: how each ended ("" when quietly)."""
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServiceServicer_to_server(Router(fail), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    endings = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            for _ in range(STREAMS):
                ours, local = socket.socketpair()
                reader, writer = await asyncio.open_connection(sock=ours)
                _, speaker = await asyncio.open_connection(sock=local)  # the private server's side

                async def speak(speaker: asyncio.StreamWriter) -> None:
                    while True:
                        speaker.write(b"x" * 4096)
                        await speaker.drain()
                        if not chatty:
                            await asyncio.Event().wait()  # one chunk, then silence

                talking = asyncio.ensure_future(speak(speaker))
                call = stub.Stream()
                try:
                    await carry(reader, writer, call)
                    endings.append("")
                except grpc.aio.AioRpcError as exc:
                    endings.append(f"{exc.code().name}: {exc.details()}")
                finally:
                    talking.cancel()
                    call.cancel()
                    writer.transport.abort()
                    speaker.transport.abort()
    finally:
        await server.stop(0)
    return endings


def test_a_stream_the_router_ends_while_local_bytes_flow_ends_quietly():
    assert run(bridge(fail=False, chatty=True), DEADLINE) == [""] * STREAMS


def test_a_stream_the_router_fails_raises_how():
    # the local side sends one chunk and then waits, so no write races the failure
    assert run(bridge(fail=True, chatty=False), DEADLINE) == ["UNAVAILABLE: the router went away"] * STREAMS
