"""``LogStream``: driver and exporter log records, fanned out to every subscriber.

Upstream pops one shared queue, so two subscribers steal each other's records; here each
subscriber gets every record logged after it subscribed.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator

from jumpstarter_jupyter.driver.sync import Signal
from jumpstarter_jupyter.protocol.v1 import common_pb2
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb

RING = 256


class LogHub(logging.Handler):
    """Keeps the last records with sequence numbers; readers wait on a condition."""

    def __init__(self):
        super().__init__(logging.INFO)
        # records are kept as logged and turned into messages only for subscribers: a driver
        # call that logs pays for a deque append, not for formatting and a protobuf message
        self.records: collections.deque[tuple[int, logging.LogRecord]] = collections.deque(maxlen=RING)
        self.seq = 0
        self.changed = Signal()

    def handle(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.level:
            self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.seq += 1
            self.records.append((self.seq, record))
            self.changed.notify()

    async def follow(self) -> AsyncIterator[pb.LogStreamResponse]:
        """Yield records logged from now on, until the consumer stops."""
        with self.changed:
            last = self.seq
        while True:
            await self.changed.wait_async(lambda last=last: self.seq > last)
            with self.changed:
                fresh = [record for seq, record in self.records if seq > last]
                last = self.seq
            for record in fresh:
                yield _message(record)


def _message(record: logging.LogRecord) -> pb.LogStreamResponse:
    hook = getattr(record, "hook", None)
    if hook is not None:  # a line a lease hook printed
        source = (
            common_pb2.LOG_SOURCE_BEFORE_LEASE_HOOK
            if hook == "beforeLease"
            else common_pb2.LOG_SOURCE_AFTER_LEASE_HOOK
        )
    elif record.name.startswith("driver."):
        source = common_pb2.LOG_SOURCE_DRIVER
    else:
        source = common_pb2.LOG_SOURCE_SYSTEM
    try:
        message = record.getMessage()
    except Exception:  # a bad format string in someone's log call must not break the stream
        message = str(record.msg)
    return pb.LogStreamResponse(uuid="", severity=record.levelname, message=message, source=source)
