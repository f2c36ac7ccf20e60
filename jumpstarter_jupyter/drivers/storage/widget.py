"""``StorageMuxWidget``: a host/dut/off selector, a flash control with a progress bar and
its throughput, and, for real block devices, the card's device path, size and last flash.

The image path is a file on the kernel's machine (where the notebook runs), as for
``dut.storage.flash(path)`` in a cell.
"""

from __future__ import annotations

import os
import time
from typing import Any

import traitlets

from jumpstarter_jupyter.drivers.storage.client import StorageMuxClient
from jumpstarter_jupyter.jupyter.watcher import WidgetWatcher
from jumpstarter_jupyter.jupyter.widget import DriverWidget

POLL = 1.0  # seconds between reads of the mux position


class StorageMuxWidget(DriverWidget):
    """Switch the storage between host and DUT, and flash images with progress."""

    bundle = "storage"
    state = traitlets.Unicode("unknown").tag(sync=True)  # "host", "dut", "off" or "unknown"
    image = traitlets.Unicode("").tag(sync=True)  # the last image flashed (or being flashed)
    sent = traitlets.Int(0).tag(sync=True)  # bytes of `image` sent so far
    total = traitlets.Int(0).tag(sync=True)  # its size in bytes; 0: nothing flashed yet
    flashing = traitlets.Bool(False).tag(sync=True)
    rate = traitlets.Float(0.0).tag(sync=True)  # MB/s sent during the flash in progress
    device = traitlets.Unicode("").tag(sync=True)  # the card's block device ("": unknown or none)
    size = traitlets.Int(0).tag(sync=True)  # its capacity in bytes; 0: unknown
    last_flash = traitlets.Dict({}).tag(sync=True)  # the exporter's figures of the last flash
    summarized = ("state", "image", "sent", "total", "device", "size")

    def summarize(self) -> str:
        """Where the card is connected, the last image flashed, and the card's device."""
        image = f"\nlast image: {self.image} ({self.sent} of {self.total} bytes)" if self.image else ""
        card = f"\ncard: {self.device} ({self.size} bytes)" if self.device else ""
        return f"storage connected to: {self.state}{image}{card}"

    def __init__(self, client: StorageMuxClient, **kwargs: Any):
        super().__init__(client, **kwargs)
        self._watcher = WidgetWatcher(self, "reading the mux", self._poll)

    def action_host(self) -> None:
        self.client.host()
        self._show_state()

    def action_dut(self) -> None:
        self.client.dut()
        self._show_state()

    def action_off(self) -> None:
        self.client.off()
        self._show_state()

    def action_flash(self, path: str) -> None:
        path = os.path.expanduser(str(path).strip())
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no image file {path!r} on the kernel's machine")
        self.update(image=path, sent=0, total=os.path.getsize(path), flashing=True, rate=0.0)
        started = time.monotonic()

        def progress(sent: int, total: int | None) -> None:
            self.update(sent=sent, total=total or 0, rate=sent / max(time.monotonic() - started, 1e-3) / 1e6)

        try:
            figures = self.client.flash(path, progress=progress)
            if figures:
                self.update(last_flash=figures)
        finally:
            self.update(flashing=False)
            self._show_state()

    def _show_state(self) -> None:
        self.update(state=self.client.state() or "unknown", **self._card())

    def _card(self) -> dict[str, Any]:
        """The device, size and last flash as the exporter reports them (none without ``info``)."""
        info = self.client.info()
        if not info:
            return {}
        return {
            "device": info["device"] or "",
            "size": info["size"] or 0,
            "last_flash": info["last_flash"] or {},
        }

    def _poll(self, watcher: WidgetWatcher) -> None:
        while True:
            watcher.update(state=self.client.state() or "unknown", **self._card())
            if watcher.wait(POLL):
                return

    def stop(self) -> None:
        self._watcher.stop()
