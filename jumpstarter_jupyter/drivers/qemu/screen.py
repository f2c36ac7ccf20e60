"""``QemuScreen``: the guest's VGA screen (QMP ``screendump``) and PS/2 keyboard (QMP ``send-key``).

The Debian cloud kernel drives the standard VGA in text mode, so the screen is 80x25
characters, 720x400 pixels; the cursor blinks, so the picture changes about twice a second
even when nothing is typed.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from dataclasses import dataclass, field

from PIL import Image

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.qemu.machine import QemuMachine
from jumpstarter_jupyter.drivers.screen.common import key_names, text_keys
from jumpstarter_jupyter.drivers.screen.driver import FrameStore, ScreenInterface, check_wait

KEY_HOLD = 20  # milliseconds each key stays down (QEMU's default 100 makes typing slow)


@dataclass
class QemuScreen(ScreenInterface):
    """The QEMU guest's display and keyboard; ``poll``: seconds between pictures while a viewer waits."""

    machine: QemuMachine | None = field(default=None, repr=False)
    poll: float = 0.1
    store: FrameStore = field(default_factory=FrameStore, init=False, repr=False)
    grab_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    grabbed_at: float = field(default=0.0, init=False, repr=False)  # monotonic time of the last picture
    raw: bytes = field(default=b"", init=False, repr=False)  # the last picture as QEMU dumped it (PPM)

    @property
    def source(self) -> str:
        return f"QEMU {self.machine.spec.arch} VGA screen"

    def _grab(self) -> bytes:
        """A PNG of the screen now, stored as a new frame when it differs from the last.

        QEMU dumps PPM (raw pixels: 10 ms) and Pillow makes the PNG, quickly compressed, only
        when the picture changed: QEMU's own PNG output takes about 85 ms a picture.
        """
        path = self.machine.workdir / "screen.ppm"
        with self.grab_lock:
            try:
                self.machine.qmp("screendump", filename=str(path), format="ppm")
            except RuntimeError as exc:
                self.store.fail(str(exc))
                raise RuntimeError(f"{self.source}: {exc}") from None
            raw = path.read_bytes()
            if self.store.latest is None or raw != self.raw:
                with Image.open(io.BytesIO(raw)) as picture:
                    png = io.BytesIO()
                    picture.save(png, format="PNG", compress_level=1)
                    self.store.put(png.getvalue(), picture.size)
                self.raw = raw
            elif self.store.error:
                self.store.fail("")  # powered on again, showing what it showed before
            self.grabbed_at = time.monotonic()
            return self.store.latest.data

    @export
    def snapshot(self) -> str:
        """The screen now as base64 PNG."""
        return base64.b64encode(self._grab()).decode("ascii")

    @export
    def frame(self, after: int = 0, timeout: float = 1.0) -> dict | None:
        """The screen once it differs from frame ``after`` (checked every ``poll`` s, up to ``timeout``)."""
        check_wait(after, timeout)
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() - self.grabbed_at >= self.poll:
                self._grab()
            frame = self.store.newer(after)
            left = deadline - time.monotonic()
            if frame is not None or left <= 0:
                return frame.to_wire() if frame else None
            if self.cancelled():
                return None
            self.store.wait(after, min(self.poll, left))  # another caller's picture may come first

    @export
    def state(self) -> dict:
        """``online`` while the guest runs, the picture's size, ``fps`` of changes and ``error``."""
        return {"source": self.source, "keyboard": True, **self.store.state(), "online": self.machine.powered}

    @export
    def type(self, text: str) -> None:
        """Type ``text`` on the guest's keyboard (US layout; ``\\n`` is Enter)."""
        for keys in text_keys(text):
            self._press(keys)

    @export
    def key(self, combo: str) -> None:
        """Press a key combination: ``"ret"``, ``"ctrl-c"``, ``"ctrl-alt-del"``."""
        self._press(key_names(combo))

    def _press(self, keys: list[str]) -> None:
        try:
            self.machine.qmp(
                "send-key", keys=[{"type": "qcode", "data": key} for key in keys], **{"hold-time": KEY_HOLD}
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{self.source}: {exc}") from None
