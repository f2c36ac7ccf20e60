"""``ScreenWidget``: the board's screen live in the notebook, and its keyboard for the lease holder.

Frames travel as binary buffers (``{"type": "frame", seq, width, height, format}`` plus the
encoded picture), never as base64 text. The views set the pace: each acknowledges the frame
it has drawn, and the widget asks the exporter for another picture only while fewer than
``WINDOW`` frames await acknowledgement, and no sooner than ``1 / max_fps`` seconds after the
last. Pictures the views could not show are never fetched (dropped at the source, not queued). With no view
acknowledging (none rendered, tab closed) the widget stops asking until a view says hello.
The ``fps`` trait (frames sent per second) is synced with the still picture.
The ``still`` trait keeps a recent picture (synced every ``STILL_PERIOD`` seconds at most), which
a saved notebook shows and a new view starts from.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.screen.common import Frame
from jumpstarter_jupyter.jupyter.watcher import WidgetWatcher
from jumpstarter_jupyter.jupyter.widget import DriverWidget

MAX_FPS = 25.0  # the flusher's own rate: one frame per flush at most
WINDOW = 3  # frames sent and not yet acknowledged: one drawn while the next ones travel
STILL_PERIOD = 2.0  # seconds between syncs of the `still` trait while frames flow
FRAME_WAIT = 1.0  # seconds each frame request waits for a change
WATCHING = "watching the screen"


class ScreenWidget(DriverWidget):
    """``dut.screen`` live: pause, snapshot to a file, frame-rate cap, keyboard while focused."""

    bundle = "screen"
    summarized = ("width", "height", "source", "saved")
    paused = traitlets.Bool(False).tag(sync=True)
    max_fps = traitlets.Float(10.0).tag(sync=True)  # set by the view's menu; at most MAX_FPS
    still = traitlets.Bytes(b"").tag(sync=True)  # a recent picture, encoded (saved with the notebook)
    still_format = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)
    fps = traitlets.Float(0.0).tag(sync=True)  # frames per second sent to the views
    source = traitlets.Unicode("").tag(sync=True)
    keyboard = traitlets.Bool(False).tag(sync=True)  # the source takes typed input
    saved = traitlets.Unicode("").tag(sync=True)  # the file the last snapshot went to

    def summarize(self) -> str:
        """The picture's size and source; the last snapshot's file."""
        text = f"screen {self.width}×{self.height}" + (f" ({self.source})" if self.source else "")
        return text + (f"\nlast snapshot: {self.saved}" if self.saved else "")

    def __init__(self, client: Any, **kwargs: Any):
        super().__init__(client, **kwargs)
        self.frames_sent = 0  # tests and the bench read it
        self._frame_lock = threading.Lock()
        self._wake = threading.Event()  # something changed that may let the watcher fetch a frame
        self._credits = WINDOW  # frames the views may still be sent before they acknowledge one
        self._next: Frame | None = None
        self._seq = 0
        self._sent_at = 0.0
        self._still_at = 0.0
        self._sends: list[float] = []
        self._input = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jumpstarter-screen-input")
        self.observe(lambda _change: self._wake.set(), "paused")
        self._watcher = WidgetWatcher(self, WATCHING, self._follow)

    # the watcher: fetches a frame when the views are ready for one
    def _follow(self, watcher: WidgetWatcher) -> None:
        state = self.client.state()
        watcher.update(source=str(state.get("source", "")), keyboard=bool(state.get("keyboard", False)))
        while not watcher.stopped.is_set():
            self._wake.clear()
            if self.paused or not self._has_room():
                self._wake.wait(0.5)  # sends, acknowledgements and resuming wake it
                continue
            gap = self._sent_at + 1.0 / min(max(self.max_fps, 0.5), MAX_FPS) - time.monotonic()
            if gap > 0 and watcher.wait(gap):  # the frame-rate cap itself
                return
            frame = self.client.frame(self._seq, FRAME_WAIT)
            if frame is None:
                continue
            with self._frame_lock:
                self._next, self._seq = frame, frame.seq
            watcher.update()  # clears an earlier failure's banner
            self.poke()

    def _has_room(self) -> bool:
        """The views may be sent another frame, and none waits to be sent."""
        with self._frame_lock:
            return self._credits > 0 and self._next is None

    # the flusher's thread
    def flush(self) -> bool | None:
        """Send the views the newest frame; the still picture and the frame rate now and then."""
        super().flush()
        with self._frame_lock:
            frame, self._next = self._next, None
            if frame is not None:
                self._credits -= 1
        self._wake.set()
        if frame is None or self.comm is None:
            return None
        self.send(
            {
                "type": "frame",
                "seq": frame.seq,
                "width": frame.width,
                "height": frame.height,
                "format": frame.format,
            },
            [frame.data],
        )
        now = time.monotonic()
        self.frames_sent += 1
        self._sent_at = now
        self._sends = [t for t in self._sends if t > now - 2.0] + [now]
        with self.hold_sync():  # unchanged values send nothing: a message a second or so
            self.width, self.height = frame.width, frame.height
            if now - self._still_at >= STILL_PERIOD:
                self.still, self.still_format, self._still_at = frame.data, frame.format, now
                self.fps = round(len(self._sends) / 2.0, 1)
        return None

    # the views
    def on_message(self, content: Any, buffers: list) -> None:
        """Acknowledgements and hellos pace the frames; keys go to the board in order."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind in ("ack", "hello"):
            with self._frame_lock:
                self._credits = WINDOW if kind == "hello" else min(self._credits + 1, WINDOW)
            self._wake.set()
        elif kind == "text":
            self._input.submit(self._guarded, "keyboard", self.client.type, (str(content.get("data", "")),))
        elif kind == "key":
            self._input.submit(self._guarded, "keyboard", self.client.key, (str(content.get("combo", "")),))

    def action_snapshot(self) -> None:
        """Save the present picture to ``jumpstarter-screens/<path>-<time>.png``."""
        safe = re.sub(r"[^\w.-]", "_", self.client.display_path)
        path = Path("jumpstarter-screens") / f"{safe}-{datetime.now():%Y%m%d-%H%M%S-%f}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.client.snapshot().save(path)
        self.update(saved=str(path.resolve()))

    def stop(self) -> None:
        """Stop fetching frames and typing."""
        self._watcher.stop()
        self._wake.set()
        self._input.shutdown(wait=False)
