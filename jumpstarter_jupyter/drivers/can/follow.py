"""The ``follow`` byte stream: one reader of the frame ring, as ``CanFrames`` batches.

The client writes length-prefixed ``CanFollow`` messages (filters, options, start position);
the exporter writes length-prefixed ``CanFrames`` batches. The first batch is sent once the
first ``CanFollow`` arrived, even without frames: it tells the client its reader id.
"""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError

from jumpstarter_jupyter.drivers.can.common import Framer, filters_of, frame, pack
from jumpstarter_jupyter.drivers.can.ring import FrameReader
from jumpstarter_jupyter.protocol.v1 import can_pb2

BATCH = 4096  # frames per batch at most (~80 KB, well below gRPC's 4 MiB message limit)
log = logging.getLogger("driver.Can")


class FollowStream:
    """A ByteStream over one :class:`FrameReader`; closing it removes the reader."""

    def __init__(self, reader: FrameReader, channel: str):
        self.reader, self.channel = reader, channel
        self._framer = Framer()
        self._announced = False

    async def send(self, data: bytes) -> None:
        try:
            for body in self._framer.feed(data):
                follow = can_pb2.CanFollow.FromString(body)
                self.reader.configure(filters_of(follow), follow.receive_own_messages, follow.start)
        except (DecodeError, ValueError) as exc:
            log.warning("can follow stream: bad request (%s); closing it", exc)
            self.reader.close()

    async def receive(self) -> bytes:
        if not self._announced:
            if not await self.reader.ready_async():
                return b""
            self._announced = True
            dropped, frames = self.reader.take(BATCH)
        else:
            got = await self.reader.read_async(BATCH)
            if got is None:
                return b""
            dropped, frames = got
        return frame(
            pack(frames, self.channel, reader=self.reader.id, dropped=dropped, position=self.reader.pos)
        )

    async def send_eof(self) -> None:
        """The client sends no more filter changes; frames keep flowing until it closes."""

    def close(self) -> None:
        self.reader.close()
