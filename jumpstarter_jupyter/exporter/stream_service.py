"""Our StreamService: RouterService's streams, acknowledged (how many bytes the driver took)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from jumpstarter_jupyter.exporter.dispatch import Refused
from jumpstarter_jupyter.exporter.router_service import RouterServicer
from jumpstarter_jupyter.protocol.v1 import stream_pb2, stream_pb2_grpc


class StreamServicer(stream_pb2_grpc.StreamServiceServicer):
    """Our acknowledged byte streams: RouterService's streams, plus the count of bytes the
    driver took, on every frame out and on frames of its own while the driver says nothing."""

    def __init__(self, router: RouterServicer):
        self.router = router

    async def Stream(self, request_iterator, context):
        acks = Acknowledgements(context)
        sender = asyncio.ensure_future(acks.send())
        try:
            async for data in self.router.serve(_our_payloads(request_iterator), context, acks):
                await acks.write(
                    stream_pb2.StreamFrame(goaway=True)
                    if data is None
                    else stream_pb2.StreamFrame(payload=data)
                )
        except Refused as refused:
            sender.cancel()
            await refused.abort(context)
        finally:
            sender.cancel()


class Acknowledgements:
    """How many bytes of one stream the driver has taken, or why it took no more; and the
    stream's writer, which stamps that count on every frame it sends."""

    def __init__(self, context):
        self.received, self.error = 0, ""
        self._reported = 0  # the count the client was last sent
        self._context, self._lock = context, asyncio.Lock()
        self._changed = asyncio.Event()

    def taken(self, count: int) -> None:
        self.received += count
        self._changed.set()

    def failed(self, reason: str) -> None:
        self.error = reason
        self._changed.set()

    async def write(self, frame: stream_pb2.StreamFrame) -> None:
        """Send ``frame`` with the count (the driver's bytes and the counts share one stream)."""
        async with self._lock:
            frame.received = self._reported = self.received
            await self._context.write(frame)

    async def send(self) -> None:
        """Send the count on a frame of its own when no frame of the driver's bytes carried it."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            await asyncio.sleep(0)  # a frame of the driver's bytes about to go out carries it
            if self.received > self._reported or self.error:
                await self.write(stream_pb2.StreamFrame(error=self.error))
            if self.error:  # said: the driver takes no more, so the count stays
                return


async def _our_payloads(frames) -> AsyncIterator[bytes]:
    """Data of StreamService frames until GOAWAY or half-close."""
    async for frame in frames:
        if frame.payload:
            yield frame.payload
        if frame.goaway:
            return
