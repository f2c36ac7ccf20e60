"""Screens: what a board shows (a capture card, a camera, a virtual display) and its keyboard.

Every screen driver exports upstream's ``snapshot`` (a base64 JPEG or PNG, as upstream's
ustreamer and video drivers) and ``state``, plus ``frame`` for live views (the newest picture
after a sequence number: a viewer asks when it is ready for one, so frames it cannot show are
never sent) and ``type``/``key`` where the source takes input.
"""

from __future__ import annotations

import base64
import collections
import time
from abc import abstractmethod

from jumpstarter_jupyter.driver import Driver, Signal, export
from jumpstarter_jupyter.drivers.screen.common import CLIENT, Frame, image_size

FPS_WINDOW = 2.0  # seconds of arrivals the frame rate is measured over


class ScreenInterface(Driver):
    """What every screen driver exports."""

    client = CLIENT

    @property
    def source(self) -> str:
        """The source in words, for error messages: ``HttpVideo http://cam/stream``."""
        return type(self).__name__

    @export(readonly=True)
    @abstractmethod
    def snapshot(self) -> str:
        """The present picture, encoded (JPEG or PNG) as base64 text."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def frame(self, after: int = 0, timeout: float = 1.0) -> dict | None:
        """The newest frame numbered above ``after`` (``seq``, ``width``, ``height``, base64 ``data``),
        waiting up to ``timeout`` seconds for one; None when the picture has not changed."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def state(self) -> dict:
        """``source``, ``online``, ``width``, ``height``, ``fps`` (frames/s arriving), ``keyboard``
        (True where ``type``/``key`` work) and ``error``, if any."""
        raise NotImplementedError

    @export
    def type(self, text: str) -> None:
        """Type ``text`` on the board's keyboard (US layout)."""
        raise NotImplementedError(f"{self.source}: this source takes no keyboard input")

    @export
    def key(self, combo: str) -> None:
        """Press a key combination: ``"ret"``, ``"ctrl-c"``, ``"ctrl-alt-del"``."""
        raise NotImplementedError(f"{self.source}: this source takes no keyboard input")


class FrameStore:
    """The newest frame of a source, shared by the thread or task that takes pictures and the
    callers waiting for one (threads and coroutines alike)."""

    def __init__(self) -> None:
        self.changed = Signal()
        self.latest: Frame | None = None
        self.error = ""  # why no frames arrive, "" while they do
        self.arrivals: collections.deque[float] = collections.deque()
        self._seq = 0

    def put(self, data: bytes, size: tuple[int, int] | None = None) -> Frame:
        """Store a new picture (``size`` read from its header when not given) and wake the waiters."""
        width, height = size or image_size(data)
        now = time.monotonic()
        with self.changed:
            self._seq += 1
            self.latest = Frame(self._seq, data, width, height)
            self.error = ""
            self.arrivals.append(now)
            while self.arrivals and self.arrivals[0] < now - FPS_WINDOW:
                self.arrivals.popleft()
            self.changed.notify()
        return self.latest

    def fail(self, error: str) -> None:
        """No frames for now, and why (waiters wake to report it)."""
        with self.changed:
            self.error = error
            self.changed.notify()

    def fps(self) -> float:
        """Frames per second over the last ``FPS_WINDOW`` seconds."""
        now = time.monotonic()
        with self.changed:
            recent = [t for t in self.arrivals if t >= now - FPS_WINDOW]
        return round(len(recent) / FPS_WINDOW, 1)

    def newer(self, after: int) -> Frame | None:
        frame = self.latest
        return frame if frame is not None and frame.seq > after else None

    async def wait_async(self, after: int, timeout: float) -> Frame | None:
        """The newest frame above ``after`` within ``timeout`` seconds; None if none came."""
        await self.changed.wait_async(lambda: self.newer(after) or self.error, timeout)
        return self.newer(after)

    def wait(self, after: int, timeout: float) -> Frame | None:
        """As :meth:`wait_async`, for a driver thread."""
        self.changed.wait(lambda: self.newer(after) or self.error, timeout)
        return self.newer(after)

    def state(self) -> dict:
        frame = self.latest
        return {
            "online": frame is not None and not self.error,
            "width": frame.width if frame else 0,
            "height": frame.height if frame else 0,
            "fps": self.fps(),
            "error": self.error,
        }


def encoded(frame: Frame) -> str:
    """A frame's picture as base64 text (``snapshot``'s answer)."""
    return base64.b64encode(frame.data).decode("ascii")


def check_wait(after: int, timeout: float) -> None:
    if after < 0 or not 0 < timeout <= 60:
        raise ValueError(
            f"after must be >= 0 and timeout in (0, 60] seconds, got after={after}, timeout={timeout}"
        )
