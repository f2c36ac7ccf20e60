"""``LogStream``: driver and exporter log records, fanned out to every subscriber.

Upstream pops one shared queue, so two subscribers steal each other's records; here each
subscriber gets every record logged after it subscribed.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator

from jumpstarter_jupyter.protocol.v1 import common_pb2, jumpstarter_pb2 as pb

RING = 256


class LogHub(logging.Handler):
    """Keeps the last records with sequence numbers; readers wait on a condition."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.records: collections.deque[tuple[int, pb.LogStreamResponse]] = collections.deque(maxlen=RING)
        self.seq = 0
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        source = common_pb2.LOG_SOURCE_DRIVER if record.name.startswith("driver.") else common_pb2.LOG_SOURCE_SYSTEM
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        item = pb.LogStreamResponse(uuid="", severity=record.levelname, message=message, source=source)
        with self.changed:
            self.seq += 1
            self.records.append((self.seq, item))
            self.changed.notify_all()

    def follow(self, active: Callable[[], bool]) -> Iterator[pb.LogStreamResponse]:
        """Yield records logged from now on while ``active()`` holds."""
        with self.changed:
            last = self.seq
        while active():
            with self.changed:
                self.changed.wait_for(lambda: self.seq > last, timeout=1.0)
                fresh = [item for seq, item in self.records if seq > last]
                last = self.seq
            yield from fresh
