"""Storage on a real block device: the base of the SD-card muxes, and ``StorageDevice``.

``BlockStorageMux`` writes images onto the card's block device once the mux has connected
it to the host: whole images (plain or compressed, decompressed here) through upstream's
``write``, and only the mapped ranges of a bmap through ``write_ranges`` (ours). Before any
byte is written the device is inspected and refused if that could destroy something
(:func:`~jumpstarter_jupyter.drivers.storage.blockdev.check_writable`); it is then held with
``O_EXCL`` for the whole write. A failed or aborted write leaves the card on the host.
"""

from __future__ import annotations

import os
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.storage import blockdev
from jumpstarter_jupyter.drivers.storage.bmap import Bmap
from jumpstarter_jupyter.drivers.storage.driver import DECODE_ERRORS, StorageMuxInterface
from jumpstarter_jupyter.drivers.storage.flashing import DeviceWriter, FlashFigures, read_device
from jumpstarter_jupyter.protocol.metadata import CONTENT_ENCODING_KEY


@dataclass(kw_only=True)
class BlockStorageMux(StorageMuxInterface):
    """A mux whose card shows up on the host as a block device (upstream's config keys).

    ``storage_device`` names the card's device (``/dev/disk/by-id/…``) instead of finding it
    from the mux's USB position; ``storage_timeout`` (s) bounds the wait for it after
    ``host()``, ``storage_leeway`` (s) is how long a card that just appeared settles before
    use, ``storage_fsync_timeout`` (s) bounds the final fsync. ``allow_fixed`` lets a device
    that is not removable, USB or loop be written. ``system_root`` is where ``/proc`` and
    ``/sys`` are read (tests point it at fixture trees).
    """

    storage_device: str | None = None
    storage_timeout: float = 10
    storage_leeway: float = 6
    storage_fsync_timeout: float = 900
    allow_fixed: bool = False
    system_root: str = "/"
    lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    last_flash: dict | None = field(default=None, init=False, repr=False)
    found: str | None = field(default=None, init=False, repr=False)  # the card's device, last seen

    def __post_init__(self) -> None:
        for name in ("storage_timeout", "storage_leeway", "storage_fsync_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")

    # what each mux provides
    @abstractmethod
    def switch(self, position: str) -> None:
        """Connect the card to ``position`` (``host``, ``dut`` or ``off``) on the hardware."""

    @abstractmethod
    def position(self) -> str:
        """Where the hardware says the card is."""

    @abstractmethod
    def find_disks(self) -> list[str]:
        """The block devices under the mux's USB position (``/dev/NAME``)."""

    # the storage interface
    @export
    def host(self) -> None:
        """Connect the card to the host and wait (up to ``storage_timeout``) for its block device."""
        with self.lock:
            self.switch("host")
            self.card()

    @export
    def dut(self) -> None:
        """Connect the card to the DUT (waits for a write in progress to end; refused while the
        host has the card mounted)."""
        with self.lock:
            self._check_unmounted("dut")
            self.switch("dut")

    @export
    def off(self) -> None:
        """Disconnect the card from both sides (refused while the host has it mounted)."""
        with self.lock:
            self._check_unmounted("off")
            self.switch("off")

    @export
    def state(self) -> str:
        """Where the card is connected, as the hardware reports it: ``host``, ``dut`` or ``off``."""
        return self.position()

    @export
    def write(self, handle: dict, verify: bool = False) -> dict:
        """Write the resource ``handle`` (a whole image, decompressed here if sent compressed)
        onto the card, from offset 0; ``verify`` reads it back. Returns the flash's figures."""
        encoding = handle.get(CONTENT_ENCODING_KEY) if isinstance(handle, dict) else None

        def work(source: IO[bytes], writer: DeviceWriter, figures: FlashFigures) -> None:
            digests: list[bytes] | None = [] if verify else None
            figures.written = figures.image_size = writer.write_stream(source, digests)
            figures.reread = writer.finish()
            if digests is not None:
                writer.verify_stream(figures.written, digests)

        return self._flash(handle, None, encoding, work, verify)

    @export
    def write_ranges(self, handle: dict, bmap: dict, verify: bool = False) -> dict:
        """Write the mapped ranges of an image: ``bmap`` is :meth:`Bmap.to_wire` data, the
        resource ``handle`` carries the ranges' bytes back to back, in order. Each range's
        checksum is checked; ``verify`` reads the ranges back. Returns the flash's figures."""
        blocks = Bmap.from_wire(bmap)

        def work(source: IO[bytes], writer: DeviceWriter, figures: FlashFigures) -> None:
            figures.image_size, figures.bmap = blocks.image_size, True
            figures.written = writer.write_ranges(source, blocks)
            figures.reread = writer.finish()
            if verify:
                writer.verify_ranges(blocks)

        return self._flash(handle, blocks.image_size, None, work, verify)

    @export
    def read(self, handle: dict) -> None:
        """Copy the whole card into the resource ``handle``."""
        with self.lock:
            self.switch("host")
            path = self.card()
            with self.resource(handle) as sink:
                read_device(path, blockdev.inspect(path, self.system_root).size, sink)

    @export(readonly=True)
    def info(self) -> dict:
        """The card's device path and size in bytes (None while unseen), and the last flash's figures."""
        path = self.storage_device or self.found
        size = None
        if path and os.path.exists(path):
            try:
                size = blockdev.inspect(path, self.system_root).size
            except blockdev.StorageRefused:
                pass
        return {"device": path, "size": size, "last_flash": self.last_flash}

    # the work
    def card(self) -> str:
        """The card's block device, waiting up to ``storage_timeout`` for it to appear."""
        find = self._configured_device if self.storage_device else self.find_disks
        self.found = blockdev.wait_for_disk(
            find,
            f"{type(self).__name__} card",
            self.storage_timeout,
            self.storage_leeway,
            self.system_root,
            self.sleep,
        )
        return self.found

    def _configured_device(self) -> list[str]:
        return [self.storage_device] if os.path.exists(self.storage_device) else []

    def _check_unmounted(self, position: str) -> None:
        """Taking a mounted card away from the host would corrupt its filesystem: refuse."""
        path = self.storage_device or self.found
        if not path or not os.path.exists(path) or self.position() != "host":
            return
        try:
            mounted = blockdev.mounted_from(blockdev.inspect(path, self.system_root))
        except blockdev.StorageRefused:
            return  # not a disk we can read: nothing of ours is mounted from it
        if mounted:
            raise blockdev.StorageRefused(
                f"refusing to switch {path} to {position}: the host has it mounted "
                f"({mounted}); unmount it first"
            )

    def _flash(
        self,
        handle: dict,
        image_size: int | None,
        encoding: str | None,
        work: Callable[[IO[bytes], DeviceWriter, FlashFigures], None],
        verify: bool,
    ) -> dict:
        with self.lock:
            self.switch("host")  # as upstream's SDWire: a write always goes to the host side
            path = self.card()
            blockdev.check_writable(blockdev.inspect(path, self.system_root), image_size, self.allow_fixed)
            figures = FlashFigures(path)
            with (
                self.resource(handle) as source,
                DeviceWriter(path, DECODE_ERRORS, self.storage_fsync_timeout, encoding) as writer,
            ):
                work(source, writer, figures)
            figures.seconds, figures.verified = time.monotonic() - figures.started, verify
            self.last_flash = figures.to_wire()
        self.logger.info(
            "flashed %s: %d bytes in %.1f s%s",
            path,
            figures.written,
            figures.seconds,
            " (bmap)" if figures.bmap else "",
        )
        return self.last_flash


@dataclass(kw_only=True)
class StorageDevice(BlockStorageMux):
    """A block device the host always sees (a card reader, a USB stick, a loop device): ``device``.

    There is no mux: ``host()``, ``dut()`` and ``off()`` are accepted and change nothing, and
    the state is always ``host``.
    """

    device: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.storage_device:
            raise ValueError("StorageDevice takes device: (the block device), not storage_device")
        self.storage_device = self.device

    def switch(self, position: str) -> None:
        pass  # no mux: the host always sees the device

    def position(self) -> str:
        return "host"

    def find_disks(self) -> list[str]:
        return [self.device] if os.path.exists(self.device) else []

    def _check_unmounted(self, position: str) -> None:
        pass  # dut() and off() take nothing away from the host
