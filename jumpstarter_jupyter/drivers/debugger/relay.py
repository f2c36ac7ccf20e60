"""A local gdb (or IDE) on the exporter's one connection to the stub.

gdb speaks RSP to this relay; the relay answers acks and ``QStartNoAckMode`` itself (the stub's
connection is in no-ack mode already), passes every other packet to the stub and the reply
back, and lets the driver see resumes and stops, so its state and snapshot stay true while gdb
drives. gdb's ``detach`` continues the target, as it does on any stub; the driver's other
callers wait until gdb has gone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from jumpstarter_jupyter.driver import Pipe
from jumpstarter_jupyter.drivers.debugger.rsp import Framer, escape, frame

if TYPE_CHECKING:
    from jumpstarter_jupyter.drivers.debugger.driver import GdbServer

RESUMES = (b"c", b"C", b"s", b"S", b"vCont;")


class GdbRelay:
    """The byte stream ``GdbServer.connect`` returns: one gdb session over the driver's connection."""

    description = (
        "a local gdb is attached through forward(): the notebook's debugger calls wait until it detaches"
    )

    def __init__(self, driver: GdbServer):
        self.driver = driver
        self._framer = Framer()
        self._out = Pipe(1024)
        self._acks = True  # gdb's side of the ack protocol, until gdb asks for no-ack mode
        self._closed = False
        driver.relay_stop = self._stop_reply
        driver.halt_for_gdb()

    async def send(self, data: bytes) -> None:
        for kind, payload in self._framer.feed(data):
            if kind == "interrupt":
                self.driver.interrupt_for_gdb()
            elif kind == "bad" and self._acks:
                await self._out.put_async(b"-")
            elif kind == "packet":
                ack = b"+" if self._acks else b""
                reply = await asyncio.to_thread(self._handle, payload)
                # the ack and the reply in one write: two small ones meet Nagle and delayed ACKs (40 ms each)
                out = ack + (frame(escape(reply)) if reply is not None else b"")
                if out:
                    await self._out.put_async(out)

    def _handle(self, payload: bytes) -> bytes | None:
        """The reply to one gdb packet (None: none now; a resume's stop reply comes later)."""
        if payload == b"QStartNoAckMode":
            self._acks = False
            return b"OK"
        if payload[:1] == b"D":
            self.driver.detach_gdb()
            return b"OK"
        if payload.startswith(RESUMES) and payload != b"vCont?":
            return self.driver.run_for_gdb(payload)
        if payload[:1] in (b"k", b"R"):
            self.driver.send_for_gdb(payload)
            return None
        return self.driver.request_for_gdb(payload)

    def _stop_reply(self, payload: bytes) -> None:
        """The stub's stop reply to a resume gdb asked for (reader thread)."""
        if not self._closed:
            self._out.put(frame(escape(payload)))

    async def receive(self) -> bytes:
        return await self._out.get_async() or b""

    async def send_eof(self) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._out.close()
        self.driver.gdb_gone(self)
