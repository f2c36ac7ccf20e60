"""The serial console as a terminal widget (xterm.js in the browser).

The widget subscribes to its client's console follower: every byte, with its absolute
console offset, goes to a log file on the kernel side (all of it, in order) and into a
bounded ring from which the flusher sends the browser at most ``VIEW_BUDGET`` bytes per
flush (<= 25 flushes/s). A flood larger than that is skipped in the view only, with an
"N bytes skipped" marker drawn by the front end; ``expect()`` and the log file see every byte.
The ``scrollback`` trait (last ``SCROLLBACK`` bytes, synced at most once a second) is what a
saved notebook keeps and what a late or re-rendered view starts from.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import traitlets

from jumpstarter_jupyter.drivers.serial.common import dropped_text, marker
from jumpstarter_jupyter.jupyter.widget import DriverWidget
from jumpstarter_jupyter.protocol.metadata import CONSOLE_RESTARTED

SCROLLBACK = 64 << 10  # bytes in the synced scrollback trait (saved with the notebook)
RING = 256 << 10  # bytes kept for the view: a burst up to this size reaches the browser whole
VIEW_BUDGET = 8 << 10  # bytes per flush: <= ~200 KB/s to a browser; a faster flood is skipped in the view
SCROLLBACK_PERIOD = 1.0  # seconds between scrollback trait syncs while output flows
SUMMARY_LINES = 40  # console lines in the text summary
# ANSI escape sequences (colours, cursor moves) and control characters other than \n and \t
CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]")
BREAK_DURATION = 0.25  # seconds


def default_log_path(display_path: str) -> Path:
    """``jumpstarter-logs/dut.serial-20261126-224501.log`` under the kernel's working directory."""
    safe = re.sub(r"[^\w.-]", "_", display_path)
    return Path("jumpstarter-logs") / f"{safe}-{datetime.now():%Y%m%d-%H%M%S}.log"


class _ViewRing:
    """The recent console bytes (bounded) with absolute offsets, and how far the views got."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.start = 0  # absolute offset of data[0]
        self.sent = 0  # absolute offset up to which the views were sent bytes

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def add(self, offset: int, data: bytes) -> None:
        """Append ``data`` (already de-duplicated) found at absolute ``offset``."""
        if offset != self.end:  # first bytes, or a gap in the console: start over there
            self.data.clear()
            self.start = offset
            self.sent = max(self.sent, offset)
        self.data += data
        if len(self.data) > RING:
            cut = len(self.data) - RING
            del self.data[:cut]
            self.start += cut

    def take(self, since: int, limit: int) -> tuple[int, bytes]:
        """Up to ``limit`` bytes from ``since`` (or from the oldest byte held, if that is later)."""
        begin = max(since, self.start)
        return begin, bytes(self.data[begin - self.start : begin - self.start + limit])

    def tail(self, size: int) -> bytes:
        return bytes(self.data[-size:])


class SerialWidget(DriverWidget):
    """``dut.serial`` as a terminal: scrollback then live output; typing goes to the board."""

    bundle = "serial"
    scrollback = traitlets.Bytes(b"").tag(sync=True)
    scrollback_end = traitlets.Int(0).tag(sync=True)  # absolute offset just past `scrollback`
    epoch = traitlets.Int(0).tag(sync=True)  # +1 whenever the console starts over (exporter restarted)
    timestamps = traitlets.Bool(False).tag(sync=True)
    # modem lines as this widget last set them; None until then (the exporter cannot be asked)
    dtr = traitlets.Bool(None, allow_none=True).tag(sync=True)
    rts = traitlets.Bool(None, allow_none=True).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    log_path = traitlets.Unicode("").tag(sync=True)
    summarized = ("scrollback",)

    def summarize(self) -> str:
        """The console's last lines as plain text."""
        text = self.scrollback[-(SUMMARY_LINES * 256) :].decode(errors="replace")
        lines = CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
        return "\n".join(lines[-SUMMARY_LINES:])

    def __init__(self, client: Any, log_path: str | Path | None = None, **kwargs: Any):
        super().__init__(client, **kwargs)
        self.messages_sent = 0  # output messages to the views (tests count them)
        self.bytes_logged = 0
        self._ring = _ViewRing()
        self._ring_lock = threading.Lock()
        self._events: list[str] = []
        self._catchup: int | None = None
        self._seq = 0
        self._synced_at = 0.0
        self._synced_end = 0
        self._epoch = 0  # the flusher copies it into the `epoch` trait with the scrollback
        self._input = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jumpstarter-serial-input")
        self._end: int | None = None  # absolute offset just past the last byte taken in
        self._last_event: tuple[int, str] | None = None
        self._held: list[Any] | None = []  # live chunks that arrive while the history loads
        self._log: IO[bytes] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        if not client.scrollback_supported:
            self.status = "no scrollback: this exporter keeps none (upstream); showing output from now on"
        try:
            self._log = self._open_log(Path(log_path) if log_path else default_log_path(client.display_path))
            # subscribe before reading the history, so together they miss nothing (see history())
            self._unsubscribe = client.subscribe(self._on_chunk)
            self._load_history()
        except BaseException:
            self.close()  # no half-built widget left with an open comm
            raise

    def _load_history(self) -> None:
        try:
            history = self.client.history()
        except Exception as exc:  # the live output still works; say why the past is missing
            history = []
            self.error = f"scrollback: {exc}"
        with self._ring_lock:
            held, self._held = self._held or [], None
            for chunk in [*history, *held]:
                self._take_in(chunk)
            # the past reaches views through the scrollback trait; messages carry what follows
            self._ring.sent = self._synced_end = self._ring.end
            self._events.clear()  # past port events are in the log, not news for the views
            self.scrollback, self.scrollback_end = self._ring.tail(SCROLLBACK), self._ring.end
        self.poke()

    def _open_log(self, path: Path) -> IO[bytes]:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = str(path.resolve())
        return open(path, "ab", buffering=0)  # unbuffered: the file is current whenever a cell reads it

    @property
    def view_end(self) -> int:
        """Absolute console offset up to which output was sent to the views."""
        with self._ring_lock:
            return self._ring.sent

    # console follower thread
    def _on_chunk(self, chunk: Any) -> None:
        """Called by the client's follower for every chunk, in order; must stay quick."""
        with self._ring_lock:
            if self._held is not None:
                self._held.append(chunk)
                return
            self._take_in(chunk, live=True)
        if chunk.event:
            self.update(status=chunk.event)
        self.poke()

    def _take_in(self, chunk: Any, live: bool = False) -> None:
        """Add a chunk's new bytes to the view ring and the log (caller holds the ring lock)."""
        if live and chunk.event == CONSOLE_RESTARTED and self._end is not None:
            self._start_over()  # the exporter says its console is a new one, counting from 0
        end = self._end if self._end is not None else chunk.offset
        data = chunk.data[max(0, end - chunk.offset) :]  # history and live output overlap
        if data:
            if chunk.dropped:
                self._log_write(marker(dropped_text(chunk.dropped)))
            self._ring.add(chunk.offset + len(chunk.data) - len(data), data)
            self._end = chunk.offset + len(chunk.data)
            self._log_write(data)
        if chunk.event and (chunk.offset, chunk.event) != self._last_event and chunk.offset >= end:
            self._last_event = (chunk.offset, chunk.event)
            self._events.append(chunk.event)
            self._log_write(marker(chunk.event))

    def _start_over(self) -> None:
        """A restarted exporter's console counts from 0 again: views drop their offsets too."""
        self._epoch += 1
        self._end, self._catchup, self._synced_end = None, None, -1
        self._ring = _ViewRing()

    def _log_write(self, data: bytes) -> None:
        if (
            self._log is not None and not self._log.closed
        ):  # stop() closes it under the ring lock, which callers hold
            self._log.write(data)
            self.bytes_logged += len(data)

    # flusher thread
    def flush(self) -> bool | None:
        """Send the views one output message and, at most once a second, the scrollback trait."""
        super().flush()
        with self._ring_lock:
            ring = self._ring
            begin = ring.sent if self._catchup is None else max(self._catchup, ring.start)
            if begin < ring.sent:  # a new view replays from its offset up to the live position first
                offset, piece = ring.take(begin, min(VIEW_BUDGET, ring.sent - begin))
                self._catchup = offset + len(piece) if offset + len(piece) < ring.sent else None
            else:
                self._catchup = None
                offset, piece = ring.take(ring.sent, VIEW_BUDGET)
                ring.sent = offset + len(piece)
            events, self._events = self._events, []
            more = self._catchup is not None or ring.sent < ring.end
            end, tail, epoch = ring.end, ring.tail(SCROLLBACK), self._epoch
        if (piece or events) and self.comm is not None:
            self._seq += 1
            self.send(
                {"type": "output", "seq": self._seq, "epoch": epoch, "offset": offset, "events": events},
                [piece],
            )
            self.messages_sent += 1
        return self._sync_scrollback(end, tail, epoch) or more

    def _sync_scrollback(self, end: int, tail: bytes, epoch: int) -> bool:
        """Sync the scrollback trait when due; True while a sync is still owed."""
        if end == self._synced_end:
            return False
        if time.monotonic() - self._synced_at < SCROLLBACK_PERIOD:
            return True
        if self.comm is not None:
            with self.hold_sync():
                self.scrollback, self.scrollback_end, self.epoch = tail, end, epoch
        self._synced_at, self._synced_end = time.monotonic(), end
        return False

    # front end
    def on_message(self, content: Any, buffers: list) -> None:
        """Typed input goes to the board in order; a new view asks to catch up."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "input":
            data = str(content.get("data", "")).encode("utf-8")
            self._input.submit(self._guarded, "input", self.client.write, (data,))
        elif kind == "catchup":
            with self._ring_lock:
                offset = max(0, int(content.get("offset", -1)))
                if content.get("epoch", self._epoch) != self._epoch:
                    offset = 0  # the view knows an older console: replay what this one holds
                self._catchup = offset if self._catchup is None else min(offset, self._catchup)
            self.poke()

    def action_send_break(self) -> None:
        """Send a serial break."""
        self.client.send_break(BREAK_DURATION)

    def action_set_dtr(self, value: bool) -> None:
        """Set the DTR line."""
        self.client.set_dtr(bool(value))
        self.update(dtr=bool(value))

    def action_set_rts(self, value: bool) -> None:
        """Set the RTS line."""
        self.client.set_rts(bool(value))
        self.update(rts=bool(value))

    def stop(self) -> None:
        """Stop receiving console bytes and close the log file."""
        self._unsubscribe()
        self._input.shutdown(wait=False)
        with self._ring_lock:
            if self._log is not None:
                self._log.close()
