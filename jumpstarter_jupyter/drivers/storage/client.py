"""Python API of storage muxes: switch the card, flash images, dump it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.client.streams import Progress
from jumpstarter_jupyter.driver.resources import decoded
from jumpstarter_jupyter.drivers.storage.bmap import Bmap, beside, load
from jumpstarter_jupyter.drivers.storage.common import ENCODING_FOR_SUFFIX
from jumpstarter_jupyter.errors import DriverMethodNotFound

RANGES_PER_CALL = 20_000  # bmap ranges per write_ranges call: about 2 MB of arguments, below gRPC's 4 MiB


def image_encoding(path: str | os.PathLike) -> str | None:
    """The content encoding of an image file, from its suffix (None: a plain image).

    >>> image_encoding("rootfs.img.zst"), image_encoding("rootfs.img")
    ('zstd', None)
    """
    return ENCODING_FOR_SUFFIX.get(Path(path).suffix.lower())


class StorageMuxClient(DriverClient):
    """``dut.storage``: ``host()``, ``dut()``, ``off()``, ``flash(path)``, ``dump(path)``.

    An image travels compressed (here with xz) and lands decompressed on the card:

    >>> import lzma, os, tempfile
    >>> from jumpstarter_jupyter.drivers.storage.driver import MockStorageMux
    >>> from jumpstarter_jupyter.testing import serve
    >>> folder = tempfile.mkdtemp()
    >>> image = os.path.join(folder, "image.img.xz")
    >>> with open(image, "wb") as file:
    ...     _ = file.write(lzma.compress(b"boot sector" * 1000))
    >>> with serve(MockStorageMux()) as storage:
    ...     storage.flash(image)
    ...     storage.state()
    ...     storage.dump(os.path.join(folder, "backup.img"))
    'dut'
    >>> open(os.path.join(folder, "backup.img"), "rb").read() == b"boot sector" * 1000
    True
    """

    widget = "jumpstarter_jupyter.drivers.storage.widget.StorageMuxWidget"

    def host(self) -> None:
        """Connect the storage to the host (the exporter)."""
        self.call("host")

    def dut(self) -> None:
        """Connect the storage to the DUT."""
        self.call("dut")

    def off(self) -> None:
        """Disconnect the storage from both."""
        self.call("off")

    def state(self) -> str | None:
        """``"host"``, ``"dut"`` or ``"off"``; None when the exporter cannot tell (upstream drivers).

        >>> from jumpstarter_jupyter.drivers.storage.driver import MockStorageMux
        >>> from jumpstarter_jupyter.testing import serve
        >>> with serve(MockStorageMux()) as storage:
        ...     storage.dut()
        ...     storage.state()
        'dut'
        """
        if self.methods is None or "state" not in self.methods:
            return None
        return str(self.call("state"))

    def write_local_file(self, path: str | os.PathLike, progress: Progress | None = None) -> None:
        """Write the local file ``path`` onto the storage byte for byte (no switching)."""
        self._upload(path, None, progress)

    def read_local_file(self, path: str | os.PathLike, progress: Progress | None = None) -> None:
        """Copy the storage's contents into the local file ``path`` (no switching)."""
        with open(path, "wb") as sink:
            self.download("read", sink, progress=progress)

    def flash(
        self,
        path: str | os.PathLike,
        progress: Progress | None = None,
        compression: str | None = None,
        bmap: str | os.PathLike | bool | None = None,
        verify: bool = False,
    ) -> dict | None:
        """Switch to the host, write the image ``path``, switch to the DUT; returns the
        exporter's figures (device, bytes written, seconds, MB/s) where it gives them.

        ``.gz``, ``.xz``, ``.zst`` and ``.bz2`` images travel compressed and land
        decompressed; ``compression`` (``gzip``, ``xz``, ``zstd``, ``bz2``) overrides the
        suffix, as upstream's ``--compression``.

        With a bmap (``bmap=PATH``, or ``IMAGE.bmap`` found beside the image when ``bmap`` is
        None; ``bmap=False`` never), only the mapped ranges are sent and written, each checked
        against its checksum: a compressed image is decompressed here so that unmapped blocks
        never cross the wire. Exporters without ``write_ranges`` get the whole image.
        ``verify=True`` has the exporter read the image back and compare.
        ``progress(bytes_sent, total)`` is called as data is sent. If writing fails the
        storage stays on the host.
        """
        self.host()
        figures = self.write_image(path, progress, compression, bmap, verify)
        self.dut()
        return figures

    def write_image(
        self,
        path: str | os.PathLike,
        progress: Progress | None = None,
        compression: str | None = None,
        bmap: str | os.PathLike | bool | None = None,
        verify: bool = False,
    ) -> dict | None:
        """Write the image ``path`` as :meth:`flash` does, without switching the storage."""
        encoding = compression or image_encoding(path)
        blocks = self._bmap_for(path, bmap)
        extra = [verify] if verify else []
        if blocks is None:
            return self._upload(path, encoding, progress, extra)
        with open(path, "rb") as raw:
            with mapped_bytes(decoded(raw, encoding), blocks, seekable=encoding is None) as source:
                return self._write_ranges(source, blocks, extra, progress)

    def _write_ranges(
        self, source: _MappedBytes, blocks: Bmap, extra: list, progress: Progress | None
    ) -> dict:
        """One ``write_ranges`` call per ``RANGES_PER_CALL`` ranges (the map of a fragmented image
        would not fit one gRPC message); the figures add up."""
        figures: dict = {}
        for start in range(0, max(len(blocks.ranges), 1), RANGES_PER_CALL):
            part = dataclasses.replace(blocks, ranges=blocks.ranges[start : start + RANGES_PER_CALL])
            source.budget, sent = part.mapped_bytes, source.sent
            report = (
                None
                if progress is None
                else lambda done, _total, sent=sent: progress(sent + done, blocks.mapped_bytes)
            )
            result = self.upload(
                "write_ranges", source, part.to_wire(), *extra, total=part.mapped_bytes, progress=report
            )
            written = figures.get("written", 0) + result["written"]
            seconds = figures.get("seconds", 0) + result["seconds"]
            figures = {
                **result,
                "written": written,
                "seconds": seconds,
                "mb_per_s": round(written / seconds / 1e6, 1) if seconds else 0.0,
            }
        return figures

    def info(self) -> dict | None:
        """The card's device, its size and the last flash's figures; None if the exporter does not say."""
        if self.methods is None or "info" not in self.methods:
            return None
        return self.call("info")

    def _bmap_for(self, image: str | os.PathLike, bmap: str | os.PathLike | bool | None) -> Bmap | None:
        if bmap is False:
            return None
        found = beside(image) if bmap is None or bmap is True else bmap
        if found is None:
            if bmap is True:
                raise FileNotFoundError(
                    f"no bmap beside {image} (looked for {os.fspath(image)}.bmap and the like)"
                )
            return None
        if self.methods is None or "write_ranges" not in self.methods:
            if bmap is not None:
                raise DriverMethodNotFound(
                    self.display_path,
                    "write_ranges",
                    "this exporter cannot write bmap ranges; flash with bmap=False",
                )
            return None  # a bmap found by chance: the whole image still works
        return load(found)

    def dump(self, path: str | os.PathLike, progress: Progress | None = None) -> None:
        """Switch to the host, copy the storage into the local file ``path``, switch to the DUT."""
        self.host()
        self.read_local_file(path, progress)
        self.dut()

    def _upload(
        self,
        path: str | os.PathLike,
        encoding: str | None,
        progress: Progress | None,
        extra: list | None = None,
    ) -> Any:
        with open(path, "rb") as source:
            return self.upload(
                "write",
                source,
                *(extra or []),
                encoding=encoding,
                total=os.fstat(source.fileno()).st_size,
                progress=progress,
            )

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.storage.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group


class _MappedBytes:
    """The mapped ranges of an image read back to back: what ``write_ranges`` expects."""

    def __init__(self, image: IO[bytes], bmap: Bmap, seekable: bool):
        self.image, self.seekable, self.position, self.left = image, seekable, 0, 0
        self.spans = iter([bmap.span(r) for r in bmap.ranges])
        self.budget = bmap.mapped_bytes  # bytes the current call may read: its EOF comes there
        self.sent = 0

    def readinto(self, buffer: Any) -> int:
        """Copy the next mapped bytes into ``buffer`` (to the end of a range at most); 0 once
        the current call's budget or the map is exhausted. ``upload`` reads this way, into one
        buffer it reuses."""
        if self.budget <= 0:
            return 0
        while self.left == 0:
            offset, self.left = next(self.spans, (-1, 0))
            if offset < 0:
                return 0
            self._skip_to(offset)
        with memoryview(buffer) as view:
            count = self.image.readinto(view[: min(len(view), self.left, self.budget)])
        if not count:
            raise ValueError(f"the image ends at byte {self.position}, before its bmap's ranges do")
        self.position += count
        self.left -= count
        self.budget -= count
        self.sent += count
        return count

    def file_spans(self) -> Iterator[tuple[int, int, int]] | None:
        """The current call's mapped bytes as ``(fd, offset, length)`` spans of the image file,
        for ``sendfile``; None for a compressed image, which only ``readinto`` decompresses."""
        if not self.seekable:
            return None
        return self._spans()

    def _spans(self) -> Iterator[tuple[int, int, int]]:
        fd = self.image.fileno()
        while self.budget > 0:
            if self.left == 0:
                self.position, self.left = next(self.spans, (-1, 0))
                if self.position < 0:
                    return
            count = min(self.left, self.budget)
            yield fd, self.position, count
            self.position += count
            self.left -= count
            self.budget -= count
            self.sent += count

    def _skip_to(self, offset: int) -> None:
        if self.seekable:
            self.image.seek(offset)
        while self.position < offset and not self.seekable:  # a compressed image: decompress past the gap
            skipped = len(self.image.read(min(4 << 20, offset - self.position)))
            if not skipped:
                raise ValueError(f"the image ends at byte {self.position}, before its bmap's ranges do")
            self.position += skipped
        self.position = offset


@contextlib.contextmanager
def mapped_bytes(image: IO[bytes], bmap: Bmap, seekable: bool) -> Iterator[_MappedBytes]:
    """Read ``image``'s mapped ranges back to back (``seekable``: a plain file, skip gaps by seeking)."""
    with contextlib.closing(image):
        yield _MappedBytes(image, bmap, seekable)
